"""What the service keeps: the database, its schema and migrations, and the tables' keepers."""
