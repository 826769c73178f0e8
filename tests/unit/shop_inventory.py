"""Inventory text shared by unit tests: a real (not throwaway) environment reached over SSH."""

ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPhoenixUnitTestKeyNotForRealUse000000000 alice@laptop"

SHOP_ENVIRONMENT = f"""\
environment:
  name: shop
connection:
  type: ssh
defaults:
  ssh:
    user: alice
  admins:
    - name: alice
      ssh_keys: ["{ADMIN_KEY}"]
  site:
    server_name: shop.example.com
"""
