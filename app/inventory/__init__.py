"""Where stock is (warehouses, stores, in transit) and the ledger that explains every unit."""
