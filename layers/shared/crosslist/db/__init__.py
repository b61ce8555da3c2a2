"""PostgreSQL: typed ORM models and one engine per Lambda instance."""
