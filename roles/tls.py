"""TLS material: the environment's certificate and key, or a self-signed pair for throwaway hosts."""

import shlex

from pyinfra import host
from pyinfra.api import deploy

from roles.operations import command_unless_files, managed_directory, managed_file, secret_file

TLS_DIRECTORY = "/etc/ssl/phoenix"
SELF_SIGNED_DAYS = 825


def certificate_paths(server_name: str) -> tuple[str, str]:
    """Returns (certificate chain path, private key path) for a site."""
    return f"{TLS_DIRECTORY}/{server_name}.crt", f"{TLS_DIRECTORY}/{server_name}.key"


def self_signed_command(server_name: str, certificate: str, key: str) -> str:
    """Returns the openssl command making a self-signed certificate whose key is 0600 from birth."""
    name = shlex.quote(server_name)
    return (
        f"(umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days {SELF_SIGNED_DAYS}"
        f" -subj /CN={name} -addext subjectAltName=DNS:{name}"
        f" -keyout {shlex.quote(key)} -out {shlex.quote(certificate)}) 2>&1"
        f" && chmod 0644 {shlex.quote(certificate)}"
    )


@deploy("TLS certificate")
def apply() -> None:
    server_name = host.data.site["server_name"]
    certificate, key = certificate_paths(server_name)
    managed_directory(name="TLS directory", path=TLS_DIRECTORY, user="root", group="root", mode="0750")
    if host.data.tls_mode == "self-signed":
        command_unless_files(
            name=f"Self-signed certificate for {server_name}",
            command=self_signed_command(server_name, certificate, key),
            paths=[certificate, key],
        )
        managed_file(name="TLS key mode", path=key, user="root", group="root", mode="0600")
        return
    secrets = host.data.secrets
    secret_file(name="TLS certificate chain", path=certificate, content=secrets.get("tls_certificate"), mode="0644")
    secret_file(name="TLS private key", path=key, content=secrets.get("tls_private_key"), mode="0600")
