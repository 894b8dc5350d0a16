"""The only code that talks to Microsoft Graph (msgraph-sdk over azure-identity's managed identity)."""
