"""Training and evaluation of the SkinScan model on HAM10000."""
