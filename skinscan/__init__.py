"""SkinScan command line and local stack."""
