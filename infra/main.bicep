// Subscription-scope entry point for `azd up`: one resource group holding the function app and everything it
// talks to. Every connection is identity-based (user-assigned identity); no keys or connection strings.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags derive from it')
param environmentName string

@minLength(1)
param location string

@description('Entra tenant the app serves (TENANT_ID)')
param tenantId string = tenant().tenantId

@description('the aud a caller token must carry (CALLOUT_AUDIENCE): the app id URI of the extension app registration')
param calloutAudience string = 'api://mfa-reset-extension'

@description('client id of the Entra app registration Easy Auth signs managers in with (pickup page)')
param easyAuthClientId string = ''

@description('comma-separated access package ids (python -m provision apply prints them)')
param mfaResetPackageIds string = ''
param onboardingPackageIds string = ''
param breakGlassUserIds string = ''
param protectedGroupIds string = ''
param helpdeskGroupId string = ''
param phoneStagingGroupId string = ''
param teamsAppCatalogId string = ''

@description('AzureManagedDomain, or a custom domain you verify in DNS afterwards')
param emailDomain string = 'AzureManagedDomain'

@secure()
@description('Teams Workflows webhook URL of the reset channel; stored in Key Vault, never in an app setting')
param teamsChannelWebhookUrl string = ''

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  scope: rg
  name: 'identity'
  params: { name: 'id-mfareset-${token}', location: location, tags: tags }
}

module monitoring 'core/monitoring.bicep' = {
  scope: rg
  name: 'monitoring'
  params: { token: token, location: location, tags: tags }
}

module storage 'core/storage.bicep' = {
  scope: rg
  name: 'storage'
  params: { name: 'stmfa${token}', location: location, tags: tags }
}

module vault 'core/keyvault.bicep' = {
  scope: rg
  name: 'keyvault'
  params: { name: 'kv-mfa-${token}', location: location, tags: tags, teamsChannelWebhookUrl: teamsChannelWebhookUrl }
}

module acs 'app/acs.bicep' = {
  scope: rg
  name: 'acs'
  params: { token: token, tags: tags, emailDomain: emailDomain }
}

module api 'app/api.bicep' = {
  scope: rg
  name: 'api'
  params: {
    name: 'func-mfareset-${token}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    tenantId: tenantId
    calloutAudience: calloutAudience
    relayPrincipalAppId: relay.outputs.principalAppId
    easyAuthClientId: easyAuthClientId
    acsEndpoint: acs.outputs.endpoint
    acsSenderAddress: acs.outputs.senderAddress
    webhookSecretUri: vault.outputs.webhookSecretUri
    mfaResetPackageIds: mfaResetPackageIds
    onboardingPackageIds: onboardingPackageIds
    breakGlassUserIds: breakGlassUserIds
    protectedGroupIds: protectedGroupIds
    helpdeskGroupId: helpdeskGroupId
    phoneStagingGroupId: phoneStagingGroupId
    teamsAppCatalogId: teamsAppCatalogId
  }
}

module relay 'app/relay.bicep' = {
  scope: rg
  name: 'relay'
  params: {
    name: 'logic-mfareset-relay-${token}'
    location: location
    tags: tags
    tenantId: tenantId
    calloutUrl: 'https://func-mfareset-${token}.azurewebsites.net/api/callout'
    calloutAudience: calloutAudience
  }
}

module bot 'app/bot.bicep' = {
  scope: rg
  name: 'bot'
  params: {
    name: 'bot-mfareset-${token}'
    tags: tags
    tenantId: tenantId
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    endpoint: 'https://func-mfareset-${token}.azurewebsites.net/api/messages'
  }
}

module rbac 'app/rbac.bicep' = {
  scope: rg
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    acsName: acs.outputs.name
    keyVaultName: vault.outputs.name
  }
}

module workbook 'app/workbook.bicep' = {
  scope: rg
  name: 'workbook'
  params: { location: location, tags: tags, appInsightsId: monitoring.outputs.appInsightsId }
}

// azd writes these into the environment; infra/hooks/postprovision.py turns them into local.settings.json.
output AZURE_TENANT_ID string = tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = api.outputs.name
output FUNCTION_APP_URL string = api.outputs.url
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output ACS_ENDPOINT string = acs.outputs.endpoint
output ACS_SENDER_ADDRESS string = acs.outputs.senderAddress
output RELAY_WORKFLOW_NAME string = relay.outputs.name
output RELAY_TRIGGER_URL string = relay.outputs.triggerUrl
output RELAY_PRINCIPAL_APP_ID string = relay.outputs.principalAppId
output CALLOUT_AUDIENCE string = calloutAudience
output TEAMS_BOT_APP_ID string = identity.outputs.clientId
