"""Assembly: builds one SNP VM (platform + KVM + VMM + guest); the Python API's front door."""
