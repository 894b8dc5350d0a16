// The function app's user-assigned identity: Graph (app roles from `python -m provision apply`), storage, ACS,
// App Insights, Key Vault, and the Teams bot all use it.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
