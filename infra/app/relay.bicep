// The relay Logic App: Entitlement Management documents only Logic App endpoints (with proof-of-possession tokens),
// so EM calls this workflow, which holds no logic: it forwards the body to the callout function with its own
// managed identity's bearer token and returns the function's answer (status and body) to EM.
// The trigger accepts only EM's PoP tokens: an AADPOP authorization policy naming EM's first-party app id, and
// SAS (the sig= query key) disabled, so the callback URL alone grants nothing.
param name string
param location string
param tags object
param tenantId string
param calloutUrl string
param calloutAudience string

// Entitlement Management's first-party application (the caller of custom extensions).
var emAppId = '810dcf14-1858-4bf2-8134-4c369fa3235b'

resource relayIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}'
  location: location
  tags: tags
}

resource workflow 'Microsoft.Logic/workflows@2019-05-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${relayIdentity.id}': {} }
  }
  properties: {
    state: 'Enabled'
    accessControl: {
      triggers: {
        // SAS off: only the authorization policy below admits a caller.
        sasAuthenticationPolicy: { state: 'Disabled' }
        openAuthenticationPolicies: {
          policies: {
            'entitlement-management': {
              type: 'AADPOP'
              claims: [
                { name: 'iss', value: 'https://sts.windows.net/${tenantId}/' }
                { name: 'appid', value: emAppId }
                // PoP tokens are bound to the method and this workflow's ARM path (u, p, m claims).
                { name: 'u', value: 'management.azure.com' }
                { name: 'p', value: '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.Logic/workflows/${name}' }
                { name: 'm', value: 'POST' }
              ]
            }
          }
        }
      }
    }
    definition: {
      '$schema': 'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#'
      contentVersion: '1.0.0.0'
      triggers: {
        manual: {
          type: 'Request'
          kind: 'Http'
          inputs: { method: 'POST', schema: {} }
          // Run history must not keep EM's requests (they name users): inputs and outputs are secured.
          runtimeConfiguration: { secureData: { properties: ['inputs', 'outputs'] } }
        }
      }
      actions: {
        forward: {
          type: 'Http'
          inputs: {
            method: 'POST'
            uri: calloutUrl
            headers: { 'Content-Type': 'application/json' }
            body: '@triggerBody()'
            authentication: {
              type: 'ManagedServiceIdentity'
              identity: relayIdentity.id
              audience: calloutAudience
            }
          }
          // EM waits at most 2 s; the function answers 202 in milliseconds. No retries: EM retries itself.
          limit: { timeout: 'PT2S' }
          runtimeConfiguration: {
            contentTransfer: { transferMode: 'Chunked' }
            secureData: { properties: ['inputs', 'outputs'] }
          }
          operationOptions: 'DisableAsyncPattern'
        }
        answer: {
          type: 'Response'
          kind: 'Http'
          runAfter: { forward: ['Succeeded', 'Failed', 'TimedOut'] }
          inputs: {
            statusCode: '@coalesce(outputs(\'forward\')?[\'statusCode\'], 502)'
            body: '@body(\'forward\')'
          }
        }
      }
    }
  }
}

output name string = workflow.name
output principalAppId string = relayIdentity.properties.clientId
// The trigger URL without any SAS signature (SAS is disabled): what the custom extension's endpoint names.
output triggerUrl string = '${workflow.properties.accessEndpoint}/triggers/manual/paths/invoke?api-version=2016-10-01'
