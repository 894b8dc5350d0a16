// Azure Communication Services with an Email service and a sending domain (Azure-managed by default; a custom
// domain needs its DNS records verified before it can send). The app sends with its identity (no access key).
param token string
param tags object
param emailDomain string = 'AzureManagedDomain'
param dataLocation string = 'Europe'

resource email 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: 'email-mfareset-${token}'
  location: 'global'
  tags: tags
  properties: { dataLocation: dataLocation }
}

resource domain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: email
  name: emailDomain
  location: 'global'
  properties: {
    domainManagement: emailDomain == 'AzureManagedDomain' ? 'AzureManaged' : 'CustomerManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: 'acs-mfareset-${token}'
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [domain.id]
    disableLocalAuth: true
  }
}

output name string = acs.name
output endpoint string = 'https://${acs.properties.hostName}'
output senderAddress string = 'DoNotReply@${domain.properties.mailFromSenderDomain}'
