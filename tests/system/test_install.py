"""make install: the binary, the README and a systemd unit that runs the installed glimpse serve."""
import os
import re
import subprocess
import tempfile

from harness import ROOT


def test_make_install_puts_the_binary_and_a_systemd_unit_for_glimpse_serve():
    with tempfile.TemporaryDirectory() as dest:
        subprocess.run(["make", "-s", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/opt/g"], check=True,
                       capture_output=True)
        binary = os.path.join(dest, "opt/g/bin/glimpse")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
        assert out.startswith("glimpse "), out
        with open(os.path.join(dest, "etc/systemd/system/glimpse.service")) as f:
            unit = f.read()
        m = re.search(r"^ExecStart=(\S+) serve (.*)$", unit, re.M)
        assert m and m.group(1) == "/opt/g/bin/glimpse", unit
        assert "--listen 127.0.0.1:7070" in m.group(2) and "--keep" in m.group(2) and "--max-db-mb" in m.group(2)
        assert "KillSignal=SIGTERM" in unit and "StateDirectory=glimpse" in unit and "@PREFIX@" not in unit
        # the options the unit gives are ones glimpse serve accepts
        help_text = subprocess.run([binary, "help", "serve"], capture_output=True, text=True).stdout
        for opt in re.findall(r"--[a-z-]+", m.group(2)):
            assert opt in help_text, opt
