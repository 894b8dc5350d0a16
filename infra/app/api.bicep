// The function app on Flex Consumption (Python 3.11), running as the user-assigned identity. Storage is
// identity-based (AzureWebJobsStorage__*), App Insights takes Entra-authenticated telemetry only, Easy Auth signs
// managers in for the pickup page, and one always-ready instance serves HTTP so EM's 2 s callout limit is never
// spent on a cold start.
param name string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param appInsightsConnectionString string
param tenantId string
param calloutAudience string
param relayPrincipalAppId string
param easyAuthClientId string
param acsEndpoint string
param acsSenderAddress string
param webhookSecretUri string
param mfaResetPackageIds string
param onboardingPackageIds string
param breakGlassUserIds string
param protectedGroupIds string
param helpdeskGroupId string
param phoneStagingGroupId string
param teamsAppCatalogId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

// Every setting extensions/settings.py (and telemetry) reads; tests/infra checks this list against the code.
var appSettings = [
  // Identity-based host storage: no connection string, no key.
  { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
  { name: 'AzureWebJobsStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: storage.properties.primaryEndpoints.table }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  { name: 'TENANT_ID', value: tenantId }
  { name: 'GRAPH_BASE_URL', value: 'https://graph.microsoft.com/v1.0' }
  { name: 'GRAPH_SCOPE', value: 'https://graph.microsoft.com/.default' }
  { name: 'AUTHORITY_HOST', value: 'https://login.microsoftonline.com' }
  { name: 'MANAGED_IDENTITY_CLIENT_ID', value: identityClientId }
  { name: 'WORK_QUEUE_NAME', value: 'mfa-reset-work' }
  { name: 'TABLE_PREFIX', value: 'mfareset' }
  { name: 'CALLOUT_AUDIENCE', value: calloutAudience }
  // The relay Logic App's identity. Add EM's 810dcf14-1858-4bf2-8134-4c369fa3235b only for the undocumented
  // direct registration (provision.yaml extension.endpoint: directUrl).
  { name: 'CALLOUT_ALLOWED_CALLERS', value: relayPrincipalAppId }
  { name: 'CALLOUT_MAX_BODY_BYTES', value: '65536' }
  { name: 'MFA_RESET_PACKAGE_IDS', value: mfaResetPackageIds }
  { name: 'ONBOARDING_PACKAGE_IDS', value: onboardingPackageIds }
  { name: 'ONBOARDING_DENY_WHEN_REGISTERED', value: 'true' }
  { name: 'ONBOARDING_IGNORE_PHONES', value: 'false' }
  // Empty means the built-in privileged roles (never "none").
  { name: 'PROTECTED_ROLE_TEMPLATE_IDS', value: '' }
  { name: 'BREAK_GLASS_USER_IDS', value: breakGlassUserIds }
  { name: 'PROTECTED_GROUP_IDS', value: protectedGroupIds }
  { name: 'ALLOW_SELF_REQUEST', value: 'false' }
  { name: 'MANAGER_CHANGE_COOLDOWN_DAYS', value: '7' }
  { name: 'MAX_RESETS_PER_TARGET_PER_DAY', value: '2' }
  { name: 'RESET_METHOD_TYPES', value: 'all' }
  { name: 'PICKUP_LIFETIME_HOURS', value: '8' }
  { name: 'PICKUP_BASE_URL', value: 'https://${name}.azurewebsites.net/api/pickup' }
  // Easy Auth below fronts the app, so the pickup page may trust its X-MS-CLIENT-PRINCIPAL headers.
  { name: 'EASY_AUTH_ENABLED', value: empty(easyAuthClientId) ? 'false' : 'true' }
  { name: 'HELPDESK_GROUP_ID', value: helpdeskGroupId }
  { name: 'TAP_LIFETIME_MINUTES', value: '480' }
  { name: 'PHONE_DEFAULT_REGION', value: 'US' }
  { name: 'PHONE_STAGING_GROUP_ID', value: phoneStagingGroupId }
  { name: 'PHONE_SOURCE_ATTRIBUTE', value: 'mobilePhone' }
  { name: 'PHONE_ONLY_UNREGISTERED', value: 'true' }
  { name: 'PHONE_SYNC_MODE', value: 'add' }
  { name: 'PHONE_SYNC_SCHEDULE', value: '0 0 2 * * *' }
  { name: 'PHONE_SYNC_AUDIENCE', value: calloutAudience }
  { name: 'PHONE_SYNC_ALLOWED_CALLERS', value: '' }
  { name: 'PHONE_SYNC_MAX_BATCHES', value: '16' }
  { name: 'PHONE_SYNC_MAX_USERS_PER_REQUEST', value: '5000' }
  { name: 'NOTIFY_EMAIL_ENABLED', value: 'true' }
  { name: 'NOTIFY_TEAMS_ENABLED', value: empty(teamsAppCatalogId) ? 'false' : 'true' }
  { name: 'NOTIFY_CHANNEL_ENABLED', value: empty(webhookSecretUri) ? 'false' : 'true' }
  { name: 'ACS_ENDPOINT', value: acsEndpoint }
  // No connection string in Azure: the EmailClient uses the identity against ACS_ENDPOINT.
  { name: 'ACS_CONNECTION_STRING', value: '' }
  { name: 'ACS_SENDER_ADDRESS', value: acsSenderAddress }
  { name: 'ACS_EMAILS_PER_MINUTE', value: '30' }
  { name: 'ACS_EMAILS_PER_HOUR', value: '100' }
  { name: 'TEAMS_BOT_APP_ID', value: identityClientId }
  { name: 'TEAMS_BOT_SERVICE_URL', value: 'https://smba.trafficmanager.net/teams/' }
  { name: 'TEAMS_APP_CATALOG_ID', value: teamsAppCatalogId }
  // Where the Bot Connector publishes the keys that sign the activities Teams posts to /api/messages.
  { name: 'TEAMS_BOT_OPENID_METADATA_URL', value: 'https://login.botframework.com/v1/.well-known/openidconfiguration' }
  // A Key Vault reference: the webhook URL's signature is a credential and never sits in an app setting.
  { name: 'TEAMS_CHANNEL_WEBHOOK_URL', value: empty(webhookSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${webhookSecretUri})' }
  { name: 'NOTIFY_MAX_ATTEMPTS', value: '4' }
  { name: 'NOTIFY_RETRY_BASE_SECONDS', value: '1.0' }
  { name: 'NOTIFY_BUDGET_SECONDS', value: '30.0' }
  // Local only (the local tenant's throwaway CA); Azure uses the system trust store.
  { name: 'NOTIFY_CA_BUNDLE', value: '' }
  { name: 'SWEEP_SCHEDULE', value: '0 */5 * * * *' }
  { name: 'SWEEP_MAX_PICKUPS_PER_RUN', value: '50' }
  { name: 'SWEEP_TIME_BUDGET_SECONDS', value: '120' }
  { name: 'SWEEP_COUNT_WINDOWS_HELLO', value: 'false' }
  // Easy Auth's client assertion comes from the user-assigned identity (federated credential), not a secret.
  { name: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID', value: identityClientId }
]

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}deploymentpackage'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
        // EM waits at most 2 s for the callout's 202: one HTTP instance is always warm.
        alwaysReady: [{ name: 'http', instanceCount: 1 }]
        // A callout costs ~10 ms of CPU (bench/callout_ack.py: 16 at once ack in p99 233 ms, 200 at once in 2.9 s),
        // so past 16 concurrent requests an instance should not take more: the platform adds instances instead.
        triggers: { http: { perInstanceConcurrency: 16 } }
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// Easy Auth: Entra sign-in required in front of the pickup page. The callout, phone-sync and bot routes verify
// bearer tokens themselves, so they are excluded (a redirect to a sign-in page would break EM and the relay).
resource auth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(easyAuthClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: ['/api/callout', '/api/phones/sync', '/api/health', '/api/messages']
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: 'https://login.microsoftonline.com/${tenantId}/v2.0'
          clientId: easyAuthClientId
          // Federated credential with the user-assigned identity instead of a client secret.
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: { allowedAudiences: ['api://${easyAuthClientId}', easyAuthClientId] }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
