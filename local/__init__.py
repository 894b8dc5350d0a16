"""Local stand-ins for the cloud: the local tenant (Graph, EM, MSI, ACS, Bot Connector) and the dev host."""
