"""Rule finders by kind; each returns Atoms the structurer combines."""
