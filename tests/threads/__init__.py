"""Request threads: in process, under real servers, with a real PostgreSQL."""
