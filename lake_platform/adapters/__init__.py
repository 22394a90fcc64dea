"""Technology adapters: one interface each, a local and an AWS implementation. No asset logic here."""
