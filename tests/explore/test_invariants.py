# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Each page invariant of the explorer fires on a run that breaks it, and stays quiet on
the same run without the fault (docs/explore.md, "Invariants")."""

from snpsim.api import Scenario, function
from snpsim.explore import Explorer, load_target

SECRET = b"explore test: a secret"


def _one_page(decrypt_then_write):
    sc = Scenario("one page", memory="64M", vcpus=1)

    @sc.guest(vcpu=0)
    def work(g):
        va = g.alloc_page()
        g.result["gpa"] = g.pa(va)
        g.set_memory_decrypted(va, 1)
        if decrypt_then_write:
            g.write(va, SECRET)   # a guest bug: the secret goes to a shared page
        else:
            g.set_memory_encrypted(va, 1)
            g.write(va, SECRET)   # private: the host sees ciphertext
    return sc


def _violations(sc, secrets=()):
    ex = Explorer(sc, secrets=secrets)
    ex.watch()
    r = sc.run()
    return r, [(v["invariant"], v["where"]) for v in r.data["explore"]["violations"]]


def test_no_plaintext_fires_on_a_secret_in_a_shared_page():
    r, found = _violations(_one_page(True), (SECRET,))
    assert found == [("no-plaintext", "end of run")]
    assert r.page(r.data["gpa"]).host_read.startswith(SECRET)
    r, found = _violations(_one_page(False), (SECRET,))
    assert r.outcome.completed and found == []


def test_gmem_consistent_fires_when_the_vmm_does_not_discard():
    # a VMM whose conversion to shared sets the attribute but never discards the
    # guest_memfd range (QEMU kvm_convert_memory without ram_block_discard_guest_memfd_range):
    # the private folio stays, assigned to the guest in the RMP
    sc = _one_page(True)

    @sc.hook("kvm_convert_memory")
    def no_discard(original, s, start, size, to_private):
        if to_private:
            return original(s, start, size, to_private)
        return function("kvm_set_memory_attributes_shared")(s, start, size)

    r, found = _violations(sc)
    assert found == [("gmem-consistent", "set_memory_decrypted")]
    assert r.page(r.data["gpa"]).attribute_private is False


def test_a_target_file_brings_its_secrets(tmp_path):
    f = tmp_path / "t.py"
    f.write_text("from snpsim.api import Scenario\n"
                 "scenario = Scenario('t', memory='64M')\n"
                 "secrets = (b'one', 'not bytes', b'two')\n")
    sc, secrets = load_target(str(f))
    assert sc.name == "t" and secrets == (b"one", b"two")
