"""Code shared by every SkinScan Lambda function (a Lambda layer; never imports torch)."""
