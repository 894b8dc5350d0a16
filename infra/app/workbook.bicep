// An Azure Monitor workbook over the app's Application Insights: the audit queries (infra/workbook/audit.kql) and
// the phone prepopulation queries (phones/queries.kql), one step per query.
param location string
param tags object
param appInsightsId string

var auditQueries = filter(split(loadTextContent('../workbook/audit.kql'), ';\n'), q => !empty(trim(q)) && contains(q, '|'))
var phoneQueries = filter(split(loadTextContent('../../phones/queries.kql'), ';\n'), q => !empty(trim(q)) && contains(q, '|'))

var steps = [
  for (query, i) in concat(auditQueries, phoneQueries): {
    type: 3
    name: 'query-${i}'
    content: {
      version: 'KqlItem/1.0'
      query: query
      size: 0
      queryType: 0
      resourceType: 'microsoft.insights/components'
      visualization: 'table'
    }
  }
]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'mfa-reset-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'MFA reset: audit and phone prepopulation'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string({
      version: 'Notebook/1.0'
      items: concat(
        [{ type: 1, name: 'intro', content: { json: '## MFA reset audit\nReveals, refusals, callout health, and the phone prepopulation runs. No query shows a Temporary Access Pass: the app never logs one.' } }],
        steps
      )
      fallbackResourceIds: [appInsightsId]
    })
  }
}

output id string = workbook.id
