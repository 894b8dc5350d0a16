// Log Analytics + workspace-based Application Insights, both with local (key) authentication off: telemetry is
// accepted only from Entra-authenticated senders (the function's identity holds Monitoring Metrics Publisher).
param token string
param location string
param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-mfareset-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
    features: { disableLocalAuth: true }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-mfareset-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
// The connection string names the ingestion endpoint only; with local auth off its key authorises nothing.
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output workspaceId string = workspace.id
