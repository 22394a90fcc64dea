"""The partners' SFTP server (local AWS Transfer Family): real clients upload, and we check what lands."""

import asyncio
import os
import re
import shutil
import subprocess
import time
from datetime import date

import asyncssh
import boto3
import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner
from moto import mock_aws

from lake_platform import contracts
from lake_platform.adapters.partners import LocalPartners, UnknownPartner, contract_partner
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.adapters.transfer_aws import AwsTransferPartners, partner_landing_prefixes
from lake_platform.cli import main
from lake_platform.ingest.assets import landing_reference
from lake_platform.sources import partner
from lake_platform.sources.seed import PARTNER_LANDING
from lake_platform.sources.sftp_server import SFTP_DIR, SftpServer, add_partner, home, upload_as_partner

PLANES = b"tailnum,year,seats\nN10156,2004.0,55\nN102UW,1998.0,182\n"
Y2K = 946684800  # a backdated time a client might ask for: 2000-01-01
# Files' times come from the kernel's coarse clock, which may lag time.time() by a tick.
CLOCK_SLACK = 0.1
# OpenSSH clients on loopback: no user config, no known_hosts, no prompt.
SSH_OPTIONS = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    add_partner(root, "faa")
    add_partner(root, "acme")
    with SftpServer(root) as running:
        yield running


def key(server, name="faa"):
    return server.lake_root / SFTP_DIR / name / "id_ed25519"


def landed(server, prefix="landing/sftp/"):
    return {o.key: o for o in LocalObjectStore(root=str(server.lake_root)).list(prefix)}


def put(server, path, data, partner="faa"):
    async def upload():
        async with await server.connect(partner, key(server, partner)) as conn:
            async with conn.start_sftp_client() as sftp, sftp.open(path, "wb") as remote:
                await remote.write(data)

    server.call(upload())


def test_an_upload_lands_in_the_partners_home_under_landing_byte_for_byte(server):
    put(server, "/planes.csv", PLANES)
    put(server, "deliveries/2013-02-01/airports.csv", b"faa,name\nJFK,John F Kennedy Intl\n")
    assert landed(server)["landing/sftp/faa/planes.csv"].size == len(PLANES)
    assert (server.lake_root / "landing/sftp/faa/planes.csv").read_bytes() == PLANES
    assert "landing/sftp/faa/deliveries/2013-02-01/airports.csv" in landed(server)
    # the planes contract's landing prefix picks the upload up
    assert "landing/sftp/faa/planes.csv" in landed(server, contracts.load("planes")["source"]["landing_prefix"])


def test_uploading_again_replaces_the_object_and_readers_see_the_old_one_until_the_new_one_is_closed(server):
    put(server, "airlines.csv", b"carrier,name\nAA,American\n")
    before = landed(server)["landing/sftp/faa/airlines.csv"]

    async def replace():
        async with await server.connect("faa", key(server)) as conn, conn.start_sftp_client() as sftp:
            async with sftp.open("airlines.csv", "wb") as remote:
                await remote.write(b"carrier,name\nAA,American Airlines\n")
                during = (server.lake_root / "landing/sftp/faa/airlines.csv").read_bytes()
            with pytest.raises(asyncssh.SFTPOpUnsupported):  # S3 objects are written whole: no append
                await sftp.open("airlines.csv", "ab")
        return during

    assert server.call(replace()) == b"carrier,name\nAA,American\n"
    after = landed(server)["landing/sftp/faa/airlines.csv"]
    assert (server.lake_root / after.key).read_bytes() == b"carrier,name\nAA,American Airlines\n"
    assert after.etag != before.etag


@pytest.mark.parametrize("ending", ["connection lost", "client ends the session"])
def test_a_partial_upload_never_appears_in_landing(server, ending):
    async def half_an_upload():
        conn = await server.connect("faa", key(server))
        sftp = await conn.start_sftp_client()
        remote = await sftp.open(f"partial_{ending[0]}.csv", "wb")
        await remote.write(b"tailnum,seats\n" + b"N1,100\n" * 10_000)
        visible = set(landed(server))
        if ending == "connection lost":
            conn.abort()
        else:
            sftp.exit()  # leaves the file open: asyncssh closes it while ending the session
            await sftp.wait_closed()
        conn.close()
        return visible

    visible_while_uploading = server.call(half_an_upload())
    partial = server.lake_root / SFTP_DIR / "partial"
    deadline = time.monotonic() + 5  # the server finishes the session on its own loop
    while any(partial.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(partial.iterdir())
    assert not [k for k in [*visible_while_uploading, *landed(server)] if "partial_" in k]


def test_paths_stay_inside_the_partners_home(server):
    put(server, "secret.csv", b"acme's own\n", partner="acme")
    put(server, "../../../escape.csv", b"x")
    put(server, "/../acme/secret.csv", b"overwritten?")
    lake = server.lake_root
    assert not (lake / "escape.csv").exists() and not (lake / "landing/escape.csv").exists()
    assert (lake / "landing/sftp/faa/escape.csv").read_bytes() == b"x"  # `/..` is `/`, as in a chroot
    assert (lake / "landing/sftp/acme/secret.csv").read_bytes() == b"acme's own\n"

    async def reach_out():
        async with await server.connect("faa", key(server)) as conn, conn.start_sftp_client() as sftp:
            with pytest.raises(asyncssh.SFTPOpUnsupported):
                await sftp.symlink("/etc/passwd", "passwd")
            return await sftp.listdir("/.."), await sftp.listdir("/")

    above_home, home_listing = server.call(reach_out())
    assert sorted(above_home) == sorted(home_listing) and "escape.csv" in home_listing
    assert (lake / "landing/sftp/faa/acme/secret.csv").read_bytes() == b"overwritten?"


def test_a_key_not_registered_for_that_partner_is_refused_and_passwords_are_not_accepted(server):
    stranger = server.lake_root / "stranger_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(stranger)

    async def login(partner, private_key=None, password=None):
        options = {"client_keys": [str(private_key)] if private_key else None, "password": password}
        conn = await asyncssh.connect(
            server.host, server.port, username=partner, known_hosts=server.known_hosts(),
            config=None, agent_path=None, **options,
        )
        conn.close()

    for partner, private_key, password in [
        ("faa", stranger, None),  # nobody registered this key
        ("faa", key(server, "acme"), None),  # acme's key does not open faa's home
        ("nobody", key(server), None),  # no such partner
        ("faa", None, "faa"),  # passwords are not an option at all
    ]:
        with pytest.raises(asyncssh.PermissionDenied):
            server.call(login(partner, private_key, password))


@pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH's sftp client is not installed")
def test_the_standard_openssh_sftp_client_uploads_with_a_batch_file(server, tmp_path):
    (tmp_path / "planes.csv").write_bytes(PLANES)
    batch = tmp_path / "upload.batch"
    batch.write_text(f"put {tmp_path / 'planes.csv'} /openssh/planes.csv\nls /openssh\n")
    result = openssh_sftp(server, batch)
    assert result.returncode == 0, result.stderr
    assert (server.lake_root / "landing/sftp/faa/openssh/planes.csv").read_bytes() == PLANES


def openssh_sftp(server, batch):
    return subprocess.run(
        ["sftp", *SSH_OPTIONS, "-i", str(key(server)), "-P", str(server.port), "-b", str(batch), f"faa@{server.host}"],
        capture_output=True, text=True, timeout=30,
    )


def test_attribute_requests_succeed_and_change_nothing_and_a_file_is_dated_by_its_arrival(server):
    path = server.lake_root / "landing/sftp/faa/attrs/planes.csv"

    async def session():
        async with await server.connect("faa", key(server)) as conn, conn.start_sftp_client() as sftp:
            await sftp.mkdir("attrs", asyncssh.SFTPAttrs(permissions=0o000))
            async with sftp.open("attrs/planes.csv", "wb", asyncssh.SFTPAttrs(permissions=0o000)) as remote:
                await remote.write(PLANES)
                await remote.setstat(asyncssh.SFTPAttrs(permissions=0o000, atime=Y2K, mtime=Y2K))  # fsetstat
                await asyncio.sleep(0.3)  # the upload arrives when it is closed, not when last written
                closing = time.time()
            arrived, before = time.time(), os.stat(path)
            for follow_symlinks in (True, False):  # setstat, then lsetstat@openssh.com (OpenSSH's `chmod -h`)
                await sftp.utime("attrs/planes.csv", (Y2K, Y2K), follow_symlinks=follow_symlinks)
                await sftp.chmod("attrs/planes.csv", 0o000, follow_symlinks=follow_symlinks)
                await sftp.chown("attrs/planes.csv", 4321, 4321, follow_symlinks=follow_symlinks)
            await sftp.truncate("attrs/planes.csv", 0)
            await sftp.chmod("attrs", 0o000)
            return closing, arrived, before

    closing, arrived, before = server.call(session())
    after = os.stat(path)
    assert closing - CLOCK_SLACK <= before.st_mtime <= arrived + CLOCK_SLACK  # landing time = arrival time
    assert (after.st_mtime_ns, after.st_mode, after.st_uid, after.st_gid) == (
        before.st_mtime_ns, before.st_mode, before.st_uid, before.st_gid)
    assert path.read_bytes() == PLANES and after.st_mode & 0o600 == 0o600
    assert path.parent.stat().st_mode & 0o700 == 0o700  # mkdir's permissions are not kept either


def test_a_renamed_file_is_dated_by_the_rename_as_an_s3_copy_is(server):
    folder = server.lake_root / "landing/sftp/faa/renamed"
    folder.mkdir()
    for name in ("2000.csv", "2000_posix.csv"):  # files that landed long ago
        (folder / name).write_bytes(PLANES)
        os.utime(folder / name, (Y2K, Y2K))

    async def rename():
        async with await server.connect("faa", key(server)) as conn, conn.start_sftp_client() as sftp:
            started = time.time()
            await sftp.rename("renamed/2000.csv", "renamed/today.csv")
            await sftp.posix_rename("renamed/2000_posix.csv", "renamed/today_posix.csv")
            return started

    started = server.call(rename())
    for name in ("today.csv", "today_posix.csv"):
        assert (folder / name).stat().st_mtime >= started - CLOCK_SLACK
        assert (folder / name).read_bytes() == PLANES


@pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH's sftp client is not installed")
def test_openssh_put_p_chmod_chown_and_chgrp_with_and_without_h_succeed_and_change_nothing(server, tmp_path):
    local = tmp_path / "airports.csv"
    local.write_bytes(b"faa,name\nJFK,John F Kennedy Intl\n")
    local.chmod(0o600)
    os.utime(local, (Y2K, Y2K))
    landed_file = server.lake_root / "landing/sftp/faa/openssh_attrs/airports.csv"
    (tmp_path / "put.batch").write_text(f"put -p {local} /openssh_attrs/airports.csv\n")
    started = time.time()
    result = openssh_sftp(server, tmp_path / "put.batch")
    assert result.returncode == 0, result.stderr
    before = landed_file.stat()
    assert before.st_mtime >= started - CLOCK_SLACK  # not the local file's time: `-p` is ignored
    commands = [f"{command} {flag} {value} /openssh_attrs/airports.csv"
                for command, value in [("chmod", "000"), ("chown", "4321"), ("chgrp", "4321")] for flag in ("", "-h")]
    (tmp_path / "attrs.batch").write_text("".join(f"{c}\n" for c in commands))
    result = openssh_sftp(server, tmp_path / "attrs.batch")
    assert result.returncode == 0, result.stderr
    after = landed_file.stat()
    assert (after.st_mtime_ns, after.st_mode, after.st_uid, after.st_gid) == (
        before.st_mtime_ns, before.st_mode, before.st_uid, before.st_gid)


def openssh_version():
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


@pytest.mark.skipif(shutil.which("scp") is None or shutil.which("ssh") is None,
                    reason="OpenSSH's scp client is not installed")
def test_openssh_scp_uploads_replaces_and_downloads_with_exit_status_0_and_legacy_scp_is_refused(server, tmp_path):
    if openssh_version() < (9, 0):
        pytest.skip("OpenSSH's scp uses the SFTP protocol by default only from OpenSSH 9.0")

    def scp(*args):
        return subprocess.run(["scp", *SSH_OPTIONS, "-i", str(key(server)), "-P", str(server.port), *args],
                              capture_output=True, text=True, timeout=30)

    remote = f"faa@{server.host}:/scp/planes.csv"
    landed_file = server.lake_root / "landing/sftp/faa/scp/planes.csv"
    local = tmp_path / "planes.csv"
    local.write_bytes(PLANES)
    result = scp(str(local), remote)
    assert result.returncode == 0, result.stderr  # it was 1 ("Exit status -1"): no exit status was sent
    assert landed_file.read_bytes() == PLANES
    local.write_bytes(PLANES + b"N103US,1999.0,182\n")  # scp opens an existing file without TRUNC
    result = scp(str(local), remote)
    assert result.returncode == 0, result.stderr
    assert landed_file.read_bytes() == local.read_bytes()
    result = scp(remote, str(tmp_path / "downloaded.csv"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "downloaded.csv").read_bytes() == local.read_bytes()
    # the old scp protocol (an exec of `scp -t`) is refused, as Transfer Family refuses it
    result = scp("-O", str(local), f"faa@{server.host}:/scp/legacy.csv")
    assert result.returncode != 0
    assert not (server.lake_root / "landing/sftp/faa/scp/legacy.csv").exists()


def test_a_file_name_that_is_not_utf8_is_refused_as_s3_object_keys_are_utf8(server):
    refusal = "file name is not valid UTF-8: S3 object keys are UTF-8"

    async def session():
        async with await server.connect("faa", key(server)) as conn, conn.start_sftp_client() as sftp:
            async with sftp.open("utf8/été.csv", "wb") as remote:  # UTF-8 beyond ASCII is fine
                await remote.write(PLANES)
            refused = []
            for request in (
                lambda: sftp.open(b"/bad\xff.csv", "wb"),
                lambda: sftp.mkdir(b"/latin1_\xe9t\xe9"),
                lambda: sftp.rename("utf8/été.csv", b"utf8/\xe9t\xe9.csv"),
            ):
                with pytest.raises(asyncssh.SFTPError) as error:
                    await request()
                refused.append(error.value)
            return refused

    refused = server.call(session())
    assert all(refusal in e.reason for e in refused), refused
    assert "/bad\\xff.csv" in refused[0].reason  # the name, shown escaped
    assert (server.lake_root / "landing/sftp/faa/utf8/été.csv").read_bytes() == PLANES
    for _, dirs, files in os.walk(bytes(server.lake_root / "landing")):
        for name in dirs + files:
            name.decode("utf-8")  # raises on a name S3 could not store


def test_the_seeded_partner_drop_and_the_sftp_homes_share_one_layout(tmp_path):
    assert PARTNER_LANDING == f"landing/sftp/{partner.PARTNER}"
    assert home(tmp_path, partner.PARTNER) == tmp_path / PARTNER_LANDING
    sftp_contracts = [contracts.load(n)["source"] for n in contracts.names()]
    prefixes = [s["landing_prefix"] for s in sftp_contracts if s["service"] == "sftp"]
    assert prefixes and all(p.startswith(f"{PARTNER_LANDING}/") for p in prefixes)


def test_about_one_day_in_seven_the_partner_reseats_a_few_planes_and_resends_the_registry_over_sftp(tmp_path):
    drop = home(tmp_path, partner.PARTNER)
    drop.mkdir(parents=True)
    registry = "tailnum,year,type,engines,seats,speed\n" + "".join(
        f"N{i}00AA,200{i}.0,Fixed wing multi engine,2,{100 + i},\n" for i in range(8)
    )
    (drop / "planes.csv").write_text(registry)
    before = pd.read_csv(drop / "planes.csv")
    assert partner.revise_planes(tmp_path, date(2013, 2, 2), seed=13) is None  # a quiet day: nothing sent
    line = partner.revise_planes(tmp_path, date(2013, 2, 1), seed=13)
    after = pd.read_csv(drop / "planes.csv")
    changed = after[after["seats"] != before["seats"]]
    assert len(changed) == partner.RESEATED and all(t in line for t in changed["tailnum"])
    # Same values; the integer columns are sent as integer literals (2000, not pandas's 2000.0), as the
    # planes contract requires of an int column.
    pd.testing.assert_frame_equal(after.drop(columns="seats"), before.drop(columns="seats"), check_dtype=False)
    assert ",2000," in (drop / "planes.csv").read_text() and ",2000.0," not in (drop / "planes.csv").read_text()
    assert (after["seats"] > 0).all()
    assert (tmp_path / SFTP_DIR / partner.PARTNER / "authorized_keys").exists()  # it logged in with a key


def test_lake_sftp_add_partner_generates_or_registers_keys(tmp_path):
    env = {"LAKE_ROOT": str(tmp_path)}
    result = CliRunner().invoke(main, ["sftp", "add-partner", "acme"], env=env)
    assert result.exit_code == 0, result.output
    theirs = tmp_path / "theirs.pub"
    asyncssh.generate_private_key("ssh-ed25519").write_public_key(theirs)
    result = CliRunner().invoke(main, ["sftp", "add-partner", "acme", "--public-key", str(theirs)], env=env)
    assert result.exit_code == 0, result.output
    authorized = (tmp_path / SFTP_DIR / "acme" / "authorized_keys").read_text().splitlines()
    assert len(authorized) == 2 and theirs.read_text().split()[1] in authorized[1]
    bad = CliRunner().invoke(main, ["sftp", "add-partner", "../etc"], env=env)
    assert bad.exit_code != 0 and "not a valid partner name" in bad.output


def test_upload_as_partner_registers_the_partner_then_uploads_through_its_own_server(tmp_path):
    path = upload_as_partner(tmp_path, "faa", "airports.csv", b"faa,name\n")
    assert path == tmp_path / "landing/sftp/faa/airports.csv" and path.read_bytes() == b"faa,name\n"


@mock_aws
def test_transfer_family_homes_resolve_to_landing_prefixes_and_a_home_outside_landing_is_refused():
    transfer = boto3.client("transfer", region_name="eu-west-1")
    server_id = transfer.create_server(Domain="S3", Protocols=["SFTP"])["ServerId"]
    role = "arn:aws:iam::123456789012:role/transfer-partners"
    logical = [{"Entry": "/", "Target": "/lake-bucket/landing/sftp/faa"}]
    transfer.create_user(ServerId=server_id, UserName="faa", Role=role,
                         HomeDirectoryType="LOGICAL", HomeDirectoryMappings=logical)
    transfer.create_user(ServerId=server_id, UserName="acme", Role=role, HomeDirectory="/lake-bucket/landing/sftp/acme/")
    transfer.create_user(ServerId=server_id, UserName="stray", Role=role, HomeDirectory="/lake-bucket/landing/../raw")

    resolved = partner_landing_prefixes(server_id, ["faa", "acme"], "lake-bucket", client=transfer)
    assert resolved == {"faa": ["landing/sftp/faa/"], "acme": ["landing/sftp/acme/"]}
    with pytest.raises(ValueError, match="'stray'.*outside s3://lake-bucket/landing/"):
        partner_landing_prefixes(server_id, ["faa", "stray"], "lake-bucket", client=transfer)
    with pytest.raises(ValueError, match="outside s3://other-bucket/landing/"):
        partner_landing_prefixes(server_id, ["faa"], "other-bucket", client=transfer)
    efs = transfer.create_server(Domain="EFS", Protocols=["SFTP"])["ServerId"]
    with pytest.raises(ValueError, match="EFS, not S3"):
        partner_landing_prefixes(efs, [], "lake-bucket", client=transfer)


# --- the partners resource and the ingest asset's check -------------------------------------------------------------


def reference_run(root, partners, names=("airlines",)):
    """landing_reference for `names`, with the lake at `root` and the given partners resource."""
    keys = [dg.AssetKey(["landing", n]) for n in names]
    store = LocalObjectStore(root=str(root))
    return dg.materialize([landing_reference], selection=keys, raise_on_error=False,
                          resources={"store": store, "partners": partners})


def failure_message(result) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.error.message


def deliver_airlines(root):
    drop = home(root, partner.PARTNER)
    drop.mkdir(parents=True, exist_ok=True)
    (drop / "airlines.csv").write_text("carrier,name\n9E,Endeavor Air Inc.\n")


def test_local_partners_answer_from_the_sftp_registry_and_refuse_an_unregistered_partner(tmp_path):
    partners = LocalPartners(lake_root=str(tmp_path))
    with pytest.raises(UnknownPartner, match=r"'faa' is not registered .* `lake sftp add-partner faa`"):
        partners.landing_prefixes("faa")
    add_partner(tmp_path, "faa")
    assert partners.landing_prefixes("faa") == ["landing/sftp/faa/"]
    assert contract_partner("landing/sftp/faa/airlines") == "faa"
    assert contract_partner("landing/sftp/airlines.csv") is None and contract_partner("landing/dms/x/y") is None


def test_the_reference_data_is_recorded_only_for_a_registered_partner_and_the_failure_says_how_to_fix_it(tmp_path):
    deliver_airlines(tmp_path)  # files in the partner's home, but nobody registered the partner

    refused = reference_run(tmp_path, LocalPartners(lake_root=str(tmp_path)))

    assert not refused.success
    message = failure_message(refused)
    assert "contract 'airlines' expects uploads from SFTP partner 'faa'" in message
    assert "`lake sftp add-partner faa`" in message
    add_partner(tmp_path, partner.PARTNER)
    recorded = reference_run(tmp_path, LocalPartners(lake_root=str(tmp_path)))
    assert recorded.success
    [materialization] = recorded.asset_materializations_for_node("landing_reference")
    assert materialization.metadata["partner"].value == "faa"
    assert materialization.metadata["partner_landing_prefixes"].value == "landing/sftp/faa/"


def transfer_server(homes: dict[str, str], bucket="lake-bucket") -> str:
    """A moto Transfer Family server with a LOGICAL-home user per partner: {user: home target key}."""
    transfer = boto3.client("transfer", region_name="eu-west-1")
    server_id = transfer.create_server(Domain="S3", Protocols=["SFTP"])["ServerId"]
    for user, target in homes.items():
        transfer.create_user(ServerId=server_id, UserName=user, Role="arn:aws:iam::123456789012:role/partner",
                             HomeDirectoryType="LOGICAL",
                             HomeDirectoryMappings=[{"Entry": "/", "Target": f"/{bucket}/{target}"}])
    return server_id


@mock_aws
def test_on_aws_the_partners_are_the_transfer_family_users_and_their_homes():
    server_id = transfer_server({"faa": "landing/sftp/faa"})
    partners = AwsTransferPartners(server_id=server_id, bucket="lake-bucket", region_name="eu-west-1")

    assert partners.landing_prefixes("faa") == ["landing/sftp/faa/"]
    unknown = f"server {server_id} has no user 'acme': add the partner to deploy/aws/partners.json"
    with pytest.raises(UnknownPartner, match=unknown):
        partners.landing_prefixes("acme")
    missing = AwsTransferPartners(server_id="s-0123456789abcdef0", bucket="lake-bucket", region_name="eu-west-1")
    with pytest.raises(RuntimeError, match="s-0123456789abcdef0 \\(LAKE_TRANSFER_SERVER_ID\\) does not exist"):
        missing.landing_prefixes("faa")


@mock_aws
def test_a_contract_outside_its_partners_transfer_family_home_fails_naming_contract_partner_and_prefixes(tmp_path):
    deliver_airlines(tmp_path)
    # The user `faa` exists, but its home was mapped to another partner's folder: its uploads never reach
    # landing/sftp/faa/, where the airlines contract looks.
    server_id = transfer_server({"faa": "landing/sftp/acme"})
    partners = AwsTransferPartners(server_id=server_id, bucket="lake-bucket", region_name="eu-west-1")

    result = reference_run(tmp_path, partners)

    assert not result.success
    message = failure_message(result)
    assert "contract 'airlines': landing_prefix 'landing/sftp/faa/airlines' is not inside SFTP partner 'faa'" in message
    assert "its uploads land under: landing/sftp/acme/" in message
    assert "map the partner's home directory to landing/sftp/faa/" in message
