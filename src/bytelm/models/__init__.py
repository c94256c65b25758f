"""Model families; each subpackage registers itself with ``bytelm.registry``."""
