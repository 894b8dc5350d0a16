// Key Vault (RBAC, no access policies) for the one secret the app has: the Teams Workflows webhook URL, whose
// query string is its credential. The app setting is a Key Vault reference resolved with the identity.
param name string
param location string
param tags object
@secure()
param teamsChannelWebhookUrl string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    enablePurgeProtection: true
  }
}

resource webhook 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(teamsChannelWebhookUrl)) {
  parent: vault
  name: 'teams-channel-webhook-url'
  properties: { value: teamsChannelWebhookUrl }
}

output name string = vault.name
// Empty when no webhook URL was given, so the app turns the channel off instead of pointing at a missing secret.
output webhookSecretUri string = empty(teamsChannelWebhookUrl) ? '' : '${vault.properties.vaultUri}secrets/teams-channel-webhook-url'
