"""The roof: what people use — the command line, the dashboard, the account report, the table docs. Imports
the floors below (flows, expectations, transforms, liushui); nothing imports it."""
