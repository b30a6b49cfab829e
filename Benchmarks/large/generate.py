#!/usr/bin/env python3
"""Deterministic generator of the large benchmark case for takeover-bridge.

Writes, into OUT:
  directory.ldif   the whole tree for `slapadd -q` (base, people, devices, an empty
                   bindings base, the bridge's non-root service account)
  reports/         the device reports, in the real formats (osqueryi JSON, osqueryd
                   result logs, JumpCloud System Insights, getent passwd, PowerShell
                   Get-LocalUser JSON in UTF-16LE and UTF-8, multi-device CSV)
  bind.pw          the service account's password (mode 0600)
  config.toml      a bridge configuration pointing at all of it (--uri)
  case.json        what was generated: counts, seed, generation time

Everything comes from one seed: the same --users and --seed give the same LDIF and the
same report contents (only the report times follow --now). The default is the
100,000-user case (20,000 devices, 200,000 connections, 1,000,000 reported local
accounts); --users scales every count by users/100,000.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import sys
import time

# --------------------------------------------------------------------------- names

FIRST = """james mary robert patricia john jennifer michael linda david elizabeth william
barbara richard susan joseph jessica thomas sarah charles karen christopher lisa daniel
nancy matthew betty anthony sandra mark margaret donald ashley steven kimberly andrew
emily paul donna joshua michelle kenneth carol kevin amanda brian melissa george deborah
timothy stephanie ronald dorothy jason rebecca edward sharon jeffrey laura ryan cynthia
jacob amy gary kathleen nicholas angela eric shirley jonathan brenda stephen emma larry
anna justin pamela scott nicole brandon samantha benjamin katherine samuel christine
gregory helen alexander debra frank rachel patrick carolyn raymond janet jack maria
dennis catherine jerry heather tyler diane aaron olivia jose julie adam joyce nathan
victoria henry ruth zachary virginia douglas lauren peter kelly kyle christina noah joan
ethan evelyn jeremy judith walter andrea christian hannah keith megan roger cheryl
terry jacqueline austin martha sean madison gerald teresa carl gloria harold sara dylan
janice arthur ann lawrence kathryn jordan abigail jesse sophia bryan frances billy jean
bruce alice gabriel judy joe isabella logan julia alan grace juan amber albert denise
willie danielle elijah marilyn randy beverly wayne charlotte vincent natalie mason
theresa roy diana ralph brittany bobby doris russell kayla bradley alexis philip lori
eugene marie ingrid bjorn sven astrid lars freya mateo lucia hugo chloe yuki hiro aiko
kenji mei wei li priya arjun ananya ravi fatima omar layla amir nadia tariq zara ines
joao thiago camila diego valentina sofia pierre amelie louis camille klaus heike jurgen
""".split()

LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez
hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez
thompson white harris sanchez clark ramirez lewis robinson walker young allen king
wright scott torres nguyen hill flores green adams nelson baker hall rivera campbell
mitchell carter roberts gomez phillips evans turner diaz parker cruz edwards collins
reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson
bailey reed kelly howard ramos kim cox ward richardson watson brooks chavez wood james
bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers long ross
foster jimenez powell jenkins perry russell sullivan bell coleman butler henderson
barnes gonzales fisher vasquez simmons romero jordan patterson alexander hamilton
graham reynolds griffin wallace moreno west cole hayes bryant herrera gibson ellis
tran medina aguilar stevens murray ford castro marshall owens harrison fernandez
mcdonald woods washington kennedy wells vargas henry chen freeman webb tucker guzman
burns crawford olson simpson porter hunter gordon mendez silva shaw snyder mason dixon
munoz hunt hicks holmes palmer wagner black robertson boyd rose stone salazar fox
warren mills meyer rice schmidt garza daniels ferguson nichols stephens soto weaver
ryan gardner payne grant dunn kelley spencer hawkins arnold pierce vazquez hansen peters
santos hart bradley knight elliott cunningham duncan armstrong hudson carroll lane
riley andrews alvarado ray delgado berry perkins hoffman johnston matthews pena richards
contreras willis carpenter lawrence sandoval guerrero george chapman rios estrada ortega
watkins greene nunez wheeler valdez harper burke larson santiago maldonado morrison
franklin carlson austin dominguez carr lawson jacobs obrien lynch singh vega bishop
montgomery oliver jensen harvey williamson gilbert dean sims espinoza howell li wong
reid hanson le mccoy garrett burton fuller wang weber welch rojas lucas marquez fields
park yang little banks padilla day walsh bowman schultz luna fowler mejia davidson
acosta brewer may holland juarez newman pearson curtis cortez douglas schneider joseph
barrett navarro figueroa keller avila wade molina stanley hopkins campos barnett bates
chambers caldwell beck lambert miranda byrd craig ayala lowe frazier powers neal leonard
gregory carrillo sutton fleming rhodes shelton schwartz norris jennings watts duran
walters cohen mcdaniel moran parks steele vaughn becker holt deleon barker terry hale
leon hail benson haynes horton miles lyons pham graves bush thornton wolfe warner
cabrera mckinney mann zimmerman dawson lara fletcher page mccarthy love robles cervantes
solis erickson reeves chang klein salinas fuentes baldwin daniel simon velasquez hardy
higgins aguirre lin cummings chandler sharp barber bowen ochoa dennis robbins liu
ramsey francis griffith paul blair oconnor cardenas pacheco cross calderon quinn moss
swanson chan rivas khan rodgers serrano fitzgerald rosales stevenson christensen manning
gill curry mclaughlin harmon mcgee gross doyle garner newton burgess reese walton blake
trujillo adkins brady goodman roman webster goodwin fischer huang potter delacruz
montoya todd wu hines mullins castaneda malone cannon tate mack sherman hubbard hodges
zhang guerra wolf valencia saunders franco rowe gallagher farmer hammond hampton
townsend ingram wise gallegos clarke barton schroeder maxwell waters logan camacho
strickland norman person colon parsons frank harrington glover osborne buchanan casey
floyd patton ibarra ball tyler suarez bowers orozco salas cobb gibbs andrade bauer
conner moody escobar mcguire lloyd mueller hartman french kramer mcbride pope lindsey
velazquez norton mccormick sparks flynn yates hogan marsh macias villanueva zamora
pratt stokes owen ballard lang brock villarreal charles drake barrera cain patrick
pineda burnett mercado santana shepherd bautista ali shaffer lamb trevino mckenzie hess
beil olsen cochran morton nash wilkins petersen briggs shah roth nicholson holloway
lozano rangel flowers hoover short arias mora valenzuela bryan meyers weiss underwood
bass greer summers houston carson morrow clayton whitaker decker yoder collier zuniga
carey wilcox melendez poole roberson larsen conley davenport copeland massey lam huff
rocha cameron jefferson hood monroe anthony pittman huynh randall singleton kirk combs
mathis christian skinner bradford richard galvan wall boone kirby wilkinson bridges
bruce atkinson velez meza roy vincent york hodge villa abbott allison tapia gates
""".split()

# macOS role and system accounts (name, uid). All protected: names starting with '_' or uid < 500.
MAC_SYSTEM = [
    ("root", 0), ("daemon", 1), ("nobody", -2), ("_uucp", 4), ("_taskgated", 13),
    ("_networkd", 24), ("_installassistant", 25), ("_lp", 26), ("_postfix", 27),
    ("_scsd", 31), ("_ces", 32), ("_appstore", 33), ("_mcxalr", 54), ("_appleevents", 55),
    ("_geod", 56), ("_devdocs", 59), ("_sandbox", 60), ("_mdnsresponder", 65), ("_ard", 67),
    ("_www", 70), ("_eppc", 71), ("_cvs", 72), ("_svn", 73), ("_mysql", 74), ("_sshd", 75),
    ("_qtss", 76), ("_cyrus", 77), ("_mailman", 78), ("_appserver", 79), ("_clamav", 82),
    ("_amavisd", 83), ("_jabber", 84), ("_appowner", 87), ("_windowserver", 88),
    ("_spotlight", 89), ("_tokend", 91), ("_securityagent", 92), ("_calendar", 93),
    ("_teamsserver", 94), ("_update_sharing", 95), ("_installer", 96), ("_atsserver", 97),
    ("_ftp", 98), ("_unknown", 99), ("_softwareupdate", 200), ("_coreaudiod", 202),
    ("_screensaver", 203), ("_locationd", 205), ("_trustevaluationagent", 208),
    ("_timezone", 210), ("_lda", 211), ("_cvmsroot", 212), ("_usbmuxd", 213),
    ("_dovecot", 214), ("_dpaudio", 215), ("_postgres", 216), ("_krbtgt", 217),
    ("_kadmin_admin", 218), ("_kadmin_changepw", 219), ("_devicemgr", 220),
    ("_webauthserver", 221), ("_netbios", 222), ("_warmd", 224), ("_dovenull", 227),
    ("_netstatistics", 228), ("_avbdeviced", 229), ("_krb_krbtgt", 230),
    ("_krb_kadmin", 231), ("_krb_changepw", 232), ("_krb_kerberos", 233),
    ("_krb_anonymous", 234), ("_assetcache", 235), ("_coremediaiod", 236),
    ("_launchservicesd", 239), ("_iconservices", 240), ("_distnote", 241),
    ("_nsurlsessiond", 242), ("_displaypolicyd", 244), ("_astris", 245), ("_krbfast", 246),
    ("_gamecontrollerd", 247), ("_mbsetupuser", 248), ("_ondemand", 249),
    ("_xserverdocs", 251), ("_wwwproxy", 252), ("_mobileasset", 253),
    ("_findmydevice", 254), ("_datadetectors", 257), ("_captiveagent", 258), ("_ctkd", 259),
    ("_applepay", 260), ("_hidd", 261), ("_cmiodalassistants", 262), ("_analyticsd", 263),
    ("_fpsd", 265), ("_timed", 266), ("_nearbyd", 268), ("_reportmemoryexception", 269),
    ("_driverkit", 270), ("_diskimagesiod", 271), ("_logd", 272), ("_appinstalld", 273),
    ("_installcoordinationd", 274), ("_demod", 275), ("_rmd", 277), ("_accessoryupdater", 278),
    ("_knowledgegraphd", 279), ("_coreml", 280), ("_sntpd", 281), ("_trustd", 282),
    ("_mmaintenanced", 283), ("_darwindaemon", 284), ("_notification_proxy", 285),
    ("_avphidbridge", 288), ("_biome", 289), ("_backgroundassets", 291), ("_oahd", 441),
]
MAC_SYSTEM_DESC = {"root": "System Administrator", "daemon": "System Services", "nobody": "Unprivileged User"}

# Debian/Ubuntu system accounts (name, uid, home, shell). All protected: uid < 1000 or nologin/false shell.
LINUX_SYSTEM = [
    ("root", 0, "/root", "/bin/bash"), ("daemon", 1, "/usr/sbin", "/usr/sbin/nologin"),
    ("bin", 2, "/bin", "/usr/sbin/nologin"), ("sys", 3, "/dev", "/usr/sbin/nologin"),
    ("sync", 4, "/bin", "/bin/sync"), ("games", 5, "/usr/games", "/usr/sbin/nologin"),
    ("man", 6, "/var/cache/man", "/usr/sbin/nologin"), ("lp", 7, "/var/spool/lpd", "/usr/sbin/nologin"),
    ("mail", 8, "/var/mail", "/usr/sbin/nologin"), ("news", 9, "/var/spool/news", "/usr/sbin/nologin"),
    ("uucp", 10, "/var/spool/uucp", "/usr/sbin/nologin"), ("proxy", 13, "/bin", "/usr/sbin/nologin"),
    ("www-data", 33, "/var/www", "/usr/sbin/nologin"), ("backup", 34, "/var/backups", "/usr/sbin/nologin"),
    ("list", 38, "/var/list", "/usr/sbin/nologin"), ("irc", 39, "/run/ircd", "/usr/sbin/nologin"),
    ("_apt", 42, "/nonexistent", "/usr/sbin/nologin"),
    ("nobody", 65534, "/nonexistent", "/usr/sbin/nologin"),
    ("systemd-network", 998, "/", "/usr/sbin/nologin"), ("systemd-timesync", 997, "/", "/usr/sbin/nologin"),
    ("messagebus", 100, "/nonexistent", "/usr/sbin/nologin"), ("systemd-resolve", 996, "/", "/usr/sbin/nologin"),
    ("sshd", 101, "/run/sshd", "/usr/sbin/nologin"), ("syslog", 102, "/nonexistent", "/usr/sbin/nologin"),
    ("uuidd", 103, "/run/uuidd", "/usr/sbin/nologin"), ("tcpdump", 104, "/nonexistent", "/usr/sbin/nologin"),
    ("tss", 105, "/var/lib/tpm", "/bin/false"), ("landscape", 106, "/var/lib/landscape", "/usr/sbin/nologin"),
    ("pollinate", 107, "/var/cache/pollinate", "/bin/false"), ("usbmux", 108, "/var/lib/usbmux", "/usr/sbin/nologin"),
    ("dnsmasq", 109, "/var/lib/misc", "/usr/sbin/nologin"), ("polkitd", 995, "/", "/usr/sbin/nologin"),
    ("postfix", 110, "/var/spool/postfix", "/usr/sbin/nologin"), ("chrony", 111, "/var/lib/chrony", "/usr/sbin/nologin"),
    ("lxd", 999, "/var/snap/lxd/common/lxd", "/bin/false"), ("fwupd-refresh", 112, "/run/systemd", "/usr/sbin/nologin"),
    ("ntp", 113, "/nonexistent", "/usr/sbin/nologin"), ("statd", 114, "/var/lib/nfs", "/usr/sbin/nologin"),
]

# Generic local accounts people leave on machines (never directory usernames).
GENERIC_LOCAL = ["admin", "localadmin", "support", "itadmin", "kiosk", "test", "student", "lab",
                 "build", "ops", "scanner", "conference", "shared", "intern", "owner", "temp",
                 "helpdesk", "service", "frontdesk", "training"]

UPPER_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def iso(t: int) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(t: int, ms: int) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".%02dZ" % (ms // 10)


def dn_escape(value: str) -> str:
    """RFC 4514 escaping of an attribute value."""
    out = []
    for i, c in enumerate(value):
        if c in ',+"\\<>;=' or (i == 0 and c in " #") or (i == len(value) - 1 and c == " "):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


# --------------------------------------------------------------------------- model

class User:
    __slots__ = ("uid", "first", "last", "display", "uid_number", "gid_number", "local", "dn")

    def __init__(self, uid, first, last, uid_number, gid_number, base):
        self.uid = uid
        self.first = first
        self.last = last
        self.display = "%s %s" % (first.capitalize(), last.capitalize())
        self.uid_number = uid_number
        self.gid_number = gid_number
        self.local = None
        self.dn = "uid=%s,ou=people,%s" % (uid, base)

    @property
    def local_name(self):
        return self.local or self.uid


class Device:
    __slots__ = ("name", "platform", "fmt", "members", "accounts", "stale", "broken", "no_report",
                 "reported_at", "uuid_seed", "domain_sid", "mac_sys")

    def __init__(self, name, platform, fmt):
        self.name = name
        self.platform = platform
        self.fmt = fmt
        self.members = []
        self.accounts = []  # list of Account
        self.stale = False
        self.broken = False
        self.no_report = False
        self.reported_at = 0
        self.mac_sys = 0


class Account:
    __slots__ = ("name", "uid", "home", "shell", "full", "hidden", "sid", "kind", "enabled")

    def __init__(self, name, uid, home, shell, full, hidden=False, sid=None, kind="local", enabled=True):
        self.name = name
        self.uid = uid
        self.home = home
        self.shell = shell
        self.full = full
        self.hidden = hidden
        self.sid = sid
        self.kind = kind  # windows osquery type: local, roaming, special; "system" marks protected rows
        self.enabled = enabled


# --------------------------------------------------------------------------- generation

class Case:
    def __init__(self, users: int, seed: int, now: int, base: str):
        self.n_users = users
        self.scale = users / 100_000
        self.n_devices = max(10, round(20_000 * self.scale))
        self.n_connections = max(self.n_devices, round(200_000 * self.scale))
        self.n_accounts = round(1_000_000 * self.scale)
        self.n_conflicts = max(2, round(50 * self.scale))
        self.seed = seed
        self.now = now
        self.base = base
        self.users: list[User] = []
        self.devices: list[Device] = []
        self.conflicts = {}

    # -- users
    def make_users(self):
        rng = random.Random(self.seed * 1_000_003 + 1)
        taken = set()
        users = []
        for i in range(self.n_users):
            first = rng.choice(FIRST)
            last = rng.choice(LAST)
            style = rng.random()
            if style < 0.6:
                base = first[0] + last
            elif style < 0.9:
                base = first + "." + last
            else:
                base = last + first[0]
            name = base
            k = 1
            while name in taken:
                k += 1
                name = "%s%d" % (base, k)
            taken.add(name)
            users.append(User(name, first, last, 10_000 + i, 10_000 if rng.random() < 0.8 else 5_000 + rng.randrange(40),
                              self.base))
        # 5 % carry a Local User Account field that differs from the username.
        folded = {u.uid.casefold() for u in users}
        with_local = rng.sample(range(self.n_users), round(self.n_users * 0.05))
        for i in with_local:
            u = users[i]
            style = rng.random()
            if style < 0.4:
                cand = u.first
            elif style < 0.7:
                cand = u.first.capitalize() + "." + u.last.capitalize()
            elif style < 0.9:
                cand = u.first + u.last[0]
            else:
                cand = u.first.capitalize()
            name = cand
            k = 1
            while name.casefold() in folded:
                k += 1
                name = "%s%d" % (cand, k)
            folded.add(name.casefold())
            u.local = name
        # Deliberate conflicts, n_conflicts of each kind, on users not already used.
        used = set()
        locals_ = [i for i in with_local]
        plain = [i for i in range(self.n_users) if users[i].local is None]
        rng.shuffle(locals_)
        rng.shuffle(plain)
        dup_local = []
        for j in range(self.n_conflicts):
            a, b = users[locals_[2 * j]], users[locals_[2 * j + 1]]
            # Same local account, different case: R1 duplicate-local-account on both.
            b.local = a.local.upper() if j % 2 else a.local
            dup_local.append([a.uid, b.uid])
            used.update((locals_[2 * j], locals_[2 * j + 1]))
        matches = []
        off = 2 * self.n_conflicts
        for j in range(self.n_conflicts):
            c = users[locals_[off + j]]
            d = users[plain[j]]
            # R3: d's username equals c's Local User Account.
            c.local = d.uid.capitalize() if j % 2 else d.uid
            matches.append([d.uid, c.uid])
        dup_uid = []
        for j in range(self.n_conflicts):
            a = users[plain[self.n_conflicts + 2 * j]]
            b = users[plain[self.n_conflicts + 2 * j + 1]]
            b.uid_number = a.uid_number
            dup_uid.append([a.uid, b.uid])
        self.conflicts = {"duplicate-local-account": dup_local, "username-matches-local-account": matches,
                          "duplicate-uid-number": dup_uid}
        self.users = users

    # -- devices, connections and reported accounts
    def make_devices(self):
        rng = random.Random(self.seed * 1_000_003 + 2)
        users = self.users
        names = set()

        def unique(name):
            cand = name
            k = 1
            while cand.casefold() in names:
                k += 1
                cand = "%s-%d" % (name, k)
            names.add(cand.casefold())
            return cand

        owners = rng.sample(range(self.n_users), self.n_devices)
        devices = []
        for i in range(self.n_devices):
            owner = users[owners[i]]
            r = rng.random()
            platform = "macos" if r < 0.30 else ("windows" if r < 0.70 else "linux")
            f = rng.random()
            if platform == "macos":
                fmt = "osqueryi" if f < 0.70 else ("si" if f < 0.85 else "osqueryd")
            elif platform == "windows":
                fmt = "ps51" if f < 0.35 else ("ps7" if f < 0.60 else ("osqueryi" if f < 0.90 else "si"))
            else:
                fmt = "getent" if f < 0.40 else ("osqueryi" if f < 0.75 else ("csv" if f < 0.90 else "osqueryd"))
            if fmt == "si":
                name = unique("%024x" % rng.getrandbits(96))
            elif platform == "macos":
                if rng.random() < 0.01:
                    name = unique("%s's MacBook Pro" % owner.first.capitalize())
                else:
                    name = unique(rng.choice(("mbp-", "mba-", "imac-")) + owner.uid.replace(".", "-"))
            elif platform == "windows":
                name = unique(rng.choice(("DESKTOP-", "LAPTOP-")) + "".join(rng.choice(UPPER_ALNUM) for _ in range(7)))
            else:
                name = unique("%s-%05d" % (rng.choice(("web", "db", "build", "dev", "ws", "gpu", "ci")), i))
            d = Device(name, platform, fmt)
            d.members.append(owners[i])
            devices.append(d)
        # The remaining connections. Laptops and desktops (macOS, Windows) mostly have their
        # owner alone, sometimes one to three more people; shared Linux machines carry the rest.
        extra = self.n_connections - self.n_devices
        member_sets = [set(d.members) for d in devices]

        def connect(di):
            while True:
                ui = rng.randrange(self.n_users)
                if ui not in member_sets[di]:
                    member_sets[di].add(ui)
                    devices[di].members.append(ui)
                    return

        for di, d in enumerate(devices):
            if d.platform != "linux" and extra > 0:
                r = rng.random()
                for _ in range(0 if r < 0.60 else 1 if r < 0.85 else 2 if r < 0.95 else 3):
                    if extra > 0:
                        connect(di)
                        extra -= 1
        linux = [di for di, d in enumerate(devices) if d.platform == "linux"] or list(range(self.n_devices))
        for di in rng.choices(linux, k=extra):
            connect(di)
        # Evidence quality: 1 % with no report, 1 % stale (explicit-time formats only),
        # a few malformed files. Everything else reported within the last 36 hours.
        order = list(range(self.n_devices))
        rng.shuffle(order)
        n_missing = round(self.n_devices * 0.01)
        for di in order[:n_missing]:
            devices[di].no_report = True
        explicit = [di for di in order[n_missing:] if devices[di].fmt in ("si", "csv", "osqueryd")]
        n_stale = min(len(explicit), round(self.n_devices * 0.01))
        for di in explicit[:n_stale]:
            devices[di].stale = True
        mtime_fmts = [di for di in order[n_missing:] if devices[di].fmt in ("osqueryi", "getent")]
        for di in mtime_fmts[:max(1, round(10 * self.scale))]:
            devices[di].broken = True
        for d in devices:
            if d.stale:
                d.reported_at = self.now - 86_400 * rng.randint(10, 60) - rng.randrange(86_400)
            else:
                d.reported_at = self.now - rng.randrange(36 * 3600)
        self.devices = devices
        self.make_accounts(rng)

    def make_accounts(self, rng):
        users = self.users
        # First pass: the accounts every device must have (system + connected people).
        base_total = 0
        self.stats_matched = 0
        for d in self.devices:
            if d.no_report:
                continue
            d.domain_sid = "S-1-5-21-%d-%d-%d" % (rng.randrange(1, 2**32), rng.randrange(1, 2**32), rng.randrange(1, 2**32))
            d.uuid_seed = rng.getrandbits(64)
            if d.platform == "macos":
                d.mac_sys = rng.randint(55, 95) + 1  # macOS release dependent; + _jumpcloudserviceaccount
                base_total += d.mac_sys
            elif d.platform == "linux":
                base_total += len(LINUX_SYSTEM)
            else:
                base_total += 4 if d.fmt in ("ps51", "ps7") else 7
            next_uid = 0
            seen = set()
            for ui in d.members:
                u = users[ui]
                r = rng.random()
                if r < 0.85:
                    name = u.local_name
                    if d.platform != "linux" and rng.random() < 0.10:
                        name = name.capitalize() if name != name.capitalize() else name.lower()
                    acc = self.person_account(d, name, u.display, next_uid)
                elif r < 0.865:
                    # R7 bait: a differently named account that is very likely this person's.
                    name = u.first if rng.random() < 0.5 else u.first + str(rng.randint(1, 99))
                    acc = self.person_account(d, name, u.display, next_uid)
                else:
                    continue  # provision
                if acc.name.casefold() in seen:
                    continue
                seen.add(acc.name.casefold())
                self.stats_matched += r < 0.85
                d.accounts.append(acc)
                next_uid += 1
                base_total += 1
        gap = self.n_accounts - base_total
        self.stats = {"accountsBeforeFill": base_total, "fillAccounts": max(0, gap), "macRoleAccountsTrimmed": max(0, -gap)}
        reporting = [d for d in self.devices if not d.no_report]
        if gap < 0:
            # Trim macOS role accounts (older macOS releases have fewer of them).
            macs = [d for d in reporting if d.platform == "macos" and d.mac_sys > 30]
            while gap < 0 and macs:
                k = rng.randrange(len(macs))
                d = macs[k]
                d.mac_sys -= 1
                gap += 1
                if d.mac_sys <= 30:
                    macs[k] = macs[-1]
                    macs.pop()
        # Fill the rest with accounts of people not connected there (former users) and generic ones.
        if gap > 0:
            # Shared Linux machines collect former users; a laptop has at most a few extras.
            weights = [12 if d.platform == "linux" else 1 for d in reporting]
            picks = rng.choices(range(len(reporting)), weights=weights, k=gap)
            for pi in picks:
                d = reporting[pi]
                seen = {a.name.casefold() for a in d.accounts}
                for _ in range(20):
                    if rng.random() < 0.6:
                        u = users[rng.randrange(self.n_users)]
                        if any(users[m] is u for m in d.members):
                            continue
                        name, full = u.local_name, u.display
                    else:
                        name = rng.choice(GENERIC_LOCAL)
                        if rng.random() < 0.5:
                            name += str(rng.randint(1, 9))
                        full = name.capitalize()
                    if name.casefold() in seen:
                        continue
                    acc = self.person_account(d, name, full, len(d.accounts))
                    if d.platform == "windows" and d.fmt == "osqueryi" and rng.random() < 0.3:
                        acc.kind = "roaming"
                        acc.sid = "S-1-5-21-1004336348-1177238915-682003330-%d" % (20_000 + rng.randrange(100_000))
                    d.accounts.append(acc)
                    break
        # Shuffle each device's person accounts so matches are not always first.
        for d in reporting:
            rng.shuffle(d.accounts)

    def person_account(self, d, name, full, j):
        if d.platform == "macos":
            return Account(name, 501 + j, "/Users/" + name, "/bin/zsh", full)
        if d.platform == "linux":
            return Account(name, 1000 + j, "/home/" + name, "/bin/bash", full + ",,,")
        return Account(name, 1001 + j, "C:\\Users\\" + name, "C:\\Windows\\system32\\cmd.exe", full,
                       sid="%s-%d" % (d.domain_sid, 1001 + j))

    # -- system accounts, materialised per device
    def system_accounts(self, d) -> list[Account]:
        if d.platform == "macos":
            out = []
            for name, uid in MAC_SYSTEM[:d.mac_sys - 1]:
                out.append(Account(name, uid, "/var/empty" if name != "root" else "/var/root",
                                   "/usr/bin/false" if name not in ("root",) else "/bin/sh",
                                   MAC_SYSTEM_DESC.get(name, name.lstrip("_").replace("_", " ").title() + " Daemon"),
                                   kind="system"))
            out.append(Account("_jumpcloudserviceaccount", 499 + (d.uuid_seed % 7) * 100,
                               "/var/_jumpcloudserviceaccount", "/usr/bin/false", "JumpCloud Service Account",
                               hidden=True, kind="system"))
            return out
        if d.platform == "linux":
            return [Account(n, u, h, s, n, kind="system") for (n, u, h, s) in LINUX_SYSTEM]
        sid = d.domain_sid
        out = [Account("Administrator", 500, "", "C:\\Windows\\system32\\cmd.exe", "", sid=sid + "-500", kind="system", enabled=False),
               Account("DefaultAccount", 503, "", "C:\\Windows\\system32\\cmd.exe", "", sid=sid + "-503", kind="system", enabled=False),
               Account("Guest", 501, "", "C:\\Windows\\system32\\cmd.exe", "", sid=sid + "-501", kind="system", enabled=False),
               Account("WDAGUtilityAccount", 504, "", "C:\\Windows\\system32\\cmd.exe", "", sid=sid + "-504", kind="system", enabled=False)]
        if d.fmt not in ("ps51", "ps7"):
            out += [Account("SYSTEM", 18, "%systemroot%\\system32\\config\\systemprofile", "C:\\Windows\\system32\\cmd.exe", "", sid="S-1-5-18", kind="special"),
                    Account("LOCAL SERVICE", 19, "%systemroot%\\ServiceProfiles\\LocalService", "C:\\Windows\\system32\\cmd.exe", "", sid="S-1-5-19", kind="special"),
                    Account("NETWORK SERVICE", 20, "%systemroot%\\ServiceProfiles\\NetworkService", "C:\\Windows\\system32\\cmd.exe", "", sid="S-1-5-20", kind="special")]
        return out

    def counts(self):
        acc = 0
        for d in self.devices:
            if d.no_report:
                continue
            acc += len(d.accounts) + (d.mac_sys if d.platform == "macos" else
                                      len(LINUX_SYSTEM) if d.platform == "linux" else
                                      4 if d.fmt in ("ps51", "ps7") else 7)
        return {
            "generation": dict(self.stats, connectedPeopleWithSameNamedAccount=self.stats_matched),
            "users": len(self.users),
            "usersWithLocalUserAccount": sum(1 for u in self.users if u.local),
            "devices": len(self.devices),
            "connections": sum(len(d.members) for d in self.devices),
            "reportedAccounts": acc,
            "devicesWithoutReport": sum(1 for d in self.devices if d.no_report),
            "devicesStale": sum(1 for d in self.devices if d.stale),
            "devicesMalformedReport": sum(1 for d in self.devices if d.broken),
            "platforms": {p: sum(1 for d in self.devices if d.platform == p) for p in ("macos", "windows", "linux")},
            "formats": {f: sum(1 for d in self.devices if d.fmt == f and not d.no_report)
                        for f in ("osqueryi", "osqueryd", "si", "getent", "csv", "ps51", "ps7")},
        }


# --------------------------------------------------------------------------- writers

def write_ldif(case: Case, path: str, bind_dn: str, bind_pw_hash: str):
    base = case.base
    rdn_attr, rdn_val = base.split(",")[0].split("=", 1)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        w = f.write
        w("dn: %s\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: Takeover Bench\n%s: %s\n\n"
          % (base, rdn_attr, rdn_val))
        for ou in ("people", "devices", "bindings", "services"):
            w("dn: ou=%s,%s\nobjectClass: top\nobjectClass: organizationalUnit\nou: %s\n\n" % (ou, base, ou))
        w("dn: %s\nobjectClass: top\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
          "cn: %s\nuserPassword: %s\ndescription: takeover-bridge service account (benchmark)\n\n"
          % (bind_dn, bind_dn.split(",")[0].split("=", 1)[1], bind_pw_hash))
        for u in case.users:
            parts = ["dn: ", u.dn, "\nobjectClass: top\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                     "objectClass: takeoverUser\nuid: ", u.uid, "\ncn: ", u.display, "\nsn: ", u.last.capitalize(),
                     "\ngivenName: ", u.first.capitalize(), "\ndisplayName: ", u.display,
                     "\nmail: ", u.uid, "@bench.example\nuidNumber: ", str(u.uid_number),
                     "\ngidNumber: ", str(u.gid_number), "\nhomeDirectory: /home/", u.uid,
                     "\nloginShell: /bin/bash\n"]
            if u.local:
                parts += ["localUserAccount: ", u.local, "\n"]
            parts.append("\n")
            w("".join(parts))
        users = case.users
        for d in case.devices:
            lines = ["dn: cn=", dn_escape(d.name), ",ou=devices,", base,
                     "\nobjectClass: top\nobjectClass: groupOfNames\ncn: ", d.name,
                     "\ndescription: ", d.platform, "\n"]
            for ui in d.members:
                lines += ["member: ", users[ui].dn, "\n"]
            lines.append("\n")
            w("".join(lines))


def osquery_row(d: Device, a: Account, rng: random.Random) -> dict:
    """The users-table columns as osqueryi --json prints them: every value a string, keys sorted."""
    uid = a.uid
    if d.platform == "macos":
        uid_s = str(uid)
        uid_u = str(uid & 0xFFFFFFFF)
        gid = "20" if a.kind != "system" else str(uid & 0xFFFFFFFF)
        gid_s = "20" if a.kind != "system" else str(uid)
        if a.kind == "system":
            uuid = "FFFFEEEE-DDDD-CCCC-BBBB-AAAA%08X" % (uid & 0xFFFFFFFF)
        else:
            x = rng.getrandbits(128)
            h = "%032X" % x
            uuid = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
        row = {"description": a.full, "directory": a.home, "gid": gid, "gid_signed": gid_s,
               "is_hidden": "1" if a.hidden else "0", "shell": a.shell, "uid": uid_u, "uid_signed": uid_s,
               "username": a.name, "uuid": uuid}
    elif d.platform == "linux":
        row = {"description": a.full, "directory": a.home, "gid": str(uid), "gid_signed": str(uid), "shell": a.shell,
               "uid": str(uid), "uid_signed": str(uid), "username": a.name, "uuid": ""}
    else:
        kind = a.kind if a.kind in ("special", "roaming") else "local"
        gid = "513" if kind != "special" else str(uid)
        row = {"description": a.full, "directory": a.home, "gid": gid, "gid_signed": gid, "shell": a.shell,
               "type": kind, "uid": str(uid), "uid_signed": str(uid), "username": a.name, "uuid": a.sid or ""}
    return row


def write_reports(case: Case, out: str):
    rng = random.Random(case.seed * 1_000_003 + 3)
    rdir = os.path.join(out, "reports")
    os.makedirs(rdir, exist_ok=True)
    for name in os.listdir(rdir):
        os.unlink(os.path.join(rdir, name))
    files = 0
    csv_batch: list[Device] = []
    csv_index = 0
    mtime_files = []

    def accounts_of(d):
        return case.system_accounts(d) + d.accounts

    def flush_csv():
        nonlocal csv_index, files
        if not csv_batch:
            return
        csv_index += 1
        lines = ["device,username,uid,sid,home,full_name,shell,hidden,reported_at\n"]
        for d in csv_batch:
            t = iso(d.reported_at)
            for a in accounts_of(d):
                full = a.full
                if "," in full or '"' in full:
                    full = '"' + full.replace('"', '""') + '"'
                lines.append("%s,%s,%d,,%s,%s,%s,,%s\n" % (d.name, a.name, a.uid, a.home, full, a.shell, t))
        with open(os.path.join(rdir, "inventory-%04d.csv" % csv_index), "w", encoding="utf-8") as f:
            f.write("".join(lines))
        files += 1
        csv_batch.clear()

    for d in case.devices:
        if d.no_report:
            continue
        accs = accounts_of(d)
        if d.fmt == "osqueryi":
            rows = [osquery_row(d, a, rng) for a in accs]
            # osqueryi --json: "[", one compact object per line indented by two spaces, "]".
            body = "[\n" + ",\n".join("  " + json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in rows) + "\n]\n"
            if d.broken:
                body = body[: len(body) // 2]
            path = os.path.join(rdir, d.name + ".json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
            mtime_files.append(path)
        elif d.fmt == "getent":
            lines = []
            for a in accs:
                lines.append("%s:x:%d:%d:%s:%s:%s\n" % (a.name, a.uid, a.uid, a.full, a.home, a.shell))
            body = "".join(lines)
            if d.broken:
                body = "\n".join(l.replace(":", ";") for l in body.split("\n")[:5])
            path = os.path.join(rdir, d.name + ".passwd")
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
            mtime_files.append(path)
        elif d.fmt == "osqueryd":
            t = d.reported_at
            cal = _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%a %b %d %H:%M:%S %Y UTC")
            head = {"name": "pack_inventory_users", "hostIdentifier": d.name, "calendarTime": cal, "unixTime": t,
                    "epoch": 0, "counter": 0, "numerics": False}
            rows = [osquery_row(d, a, rng) for a in accs]
            style = rng.random()
            if style < 0.4:
                rec = dict(head)
                rec["snapshot"] = rows
                rec["action"] = "snapshot"
                body = json.dumps(rec, separators=(",", ":")) + "\n"
            elif style < 0.7:
                rec = {"diffResults": {"removed": [], "added": rows}}
                rec.update(head)
                body = json.dumps(rec, separators=(",", ":")) + "\n"
            else:
                lines = []
                for r in rows:
                    rec = dict(head)
                    rec["columns"] = r
                    rec["action"] = "added"
                    lines.append(json.dumps(rec, separators=(",", ":")) + "\n")
                body = "".join(lines)
            with open(os.path.join(rdir, d.name + ".log"), "w", encoding="utf-8") as f:
                f.write(body)
        elif d.fmt == "si":
            t = d.reported_at
            ct = iso_ms(t, rng.randrange(1000))
            rows = []
            for a in accs:
                r = osquery_row(d, a, rng)
                r.pop("is_hidden", None)
                if d.platform != "windows":
                    r["type"] = ""
                system = a.kind in ("system", "special")
                r.update({"system_id": d.name, "collection_time": ct, "admin": False,
                          "managed": False, "real_user": not system, "suspended": False,
                          "ad_managed": False, "last_login": "" if system else str(t - rng.randrange(30 * 86_400))})
                rows.append(dict(sorted(r.items())))
            with open(os.path.join(rdir, "si-users-%s.json" % d.name), "w", encoding="utf-8") as f:
                f.write(json.dumps(rows, separators=(",", ":")))
        elif d.fmt in ("ps51", "ps7"):
            objs = []
            dom = d.domain_sid
            for a in accs:
                last = None if a.kind == "system" or rng.random() < 0.1 else (d.reported_at - rng.randrange(20 * 86_400))
                pwset = d.reported_at - rng.randrange(400 * 86_400)
                if d.fmt == "ps51":
                    date = lambda t: None if t is None else "/Date(%d)/" % (t * 1000)
                    domain = {"BinaryLength": 24, "AccountDomainSid": dom, "Value": dom}
                else:
                    date = lambda t: None if t is None else _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S")
                    domain = dom
                objs.append({
                    "AccountExpires": None,
                    "Description": {"Administrator": "Built-in account for administering the computer/domain",
                                    "Guest": "Built-in account for guest access to the computer/domain",
                                    "DefaultAccount": "A user account managed by the system.",
                                    "WDAGUtilityAccount": "A user account managed and used by the system for Windows Defender Application Guard scenarios."}.get(a.name, ""),
                    "Enabled": a.enabled,
                    "FullName": a.full,
                    "PasswordChangeableDate": date(pwset) if a.kind != "system" else None,
                    "PasswordExpires": None,
                    "UserMayChangePassword": True,
                    "PasswordRequired": a.kind != "system",
                    "PasswordLastSet": date(pwset) if a.kind != "system" else None,
                    "LastLogon": date(last),
                    "Name": a.name,
                    "SID": {"BinaryLength": 28, "AccountDomainSid": domain, "Value": a.sid},
                    "PrincipalSource": 1,
                    "ObjectClass": "User",
                })
            path = os.path.join(rdir, d.name + ".json")
            if d.fmt == "ps51":
                # Windows PowerShell 5.1: pretty-printed, "\/Date(ms)\/", UTF-16LE with a BOM.
                text = json.dumps(objs, indent=4, separators=(",", ":  ")).replace("/Date(", "\\/Date(").replace(")/", ")\\/")
                with open(path, "wb") as f:
                    f.write(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
            else:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(json.dumps(objs, separators=(",", ":")))
            mtime_files.append(path)
        elif d.fmt == "csv":
            csv_batch.append(d)
            if len(csv_batch) >= 50:
                flush_csv()
            continue
        files += 1
    flush_csv()
    # Reports without a time of their own are dated by their file: "just reported".
    for p in mtime_files:
        os.utime(p, (case.now, case.now))
    return files


def write_config(out: str, uri: str, base: str, bind_dn: str, page_size: int):
    text = """# takeover-bridge configuration for the generated benchmark case (Benchmarks/large).
[ldap]
uri = "{uri}"
bind_dn = "{bind_dn}"
bind_password_file = "{out}/bind.pw"
page_size = {page}
timeout = 120

[users]
search_base = "ou=people,{base}"
filter = "(objectClass=posixAccount)"
name_attribute = "uid"
local_account_attribute = "localUserAccount"
uid_number_attribute = "uidNumber"
display_name_attribute = "displayName"

[devices]
search_base = "ou=devices,{base}"
filter = "(objectClass=groupOfNames)"
name_attribute = "cn"
member_attribute = "member"
reports = "{out}/reports"
active_within = "7d"

[bindings]
search_base = "ou=bindings,{base}"

[safety]
max_unbinds = 1000
max_unbind_percent = 10
min_users = 1

[state]
dir = "{out}/state"
""".format(uri=uri, bind_dn=bind_dn, out=out, base=base, page=page_size)
    with open(os.path.join(out, "config.toml"), "w", encoding="utf-8") as f:
        f.write(text)
    os.makedirs(os.path.join(out, "state"), exist_ok=True)
    os.chmod(os.path.join(out, "state"), 0o700)


def ssha(password: str) -> str:
    """{SSHA} userPassword value, as slappasswd makes it."""
    import base64
    import hashlib
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=100_000, help="number of users; every other count scales with it")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--now", type=int, default=None, help="report time reference (default: now)")
    p.add_argument("--base", default="dc=bench,dc=example")
    p.add_argument("--bind-dn", default=None, help="default cn=takeover-bridge,ou=services,BASE")
    p.add_argument("--uri", default="ldap://127.0.0.1:3890/")
    p.add_argument("--page-size", type=int, default=1000)
    p.add_argument("--only", choices=("all", "reports", "config"), default="all",
                   help="reports: rewrite only reports/ (fresh times); config: only config.toml")
    a = p.parse_args(argv)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    bind_dn = a.bind_dn or "cn=takeover-bridge,ou=services," + a.base
    now = a.now if a.now is not None else int(time.time())
    if a.only == "config":
        write_config(out, a.uri, a.base, bind_dn, a.page_size)
        return 0
    t0 = time.perf_counter()
    case = Case(a.users, a.seed, now, a.base)
    case.make_users()
    case.make_devices()
    t1 = time.perf_counter()
    if a.only == "all":
        pw_path = os.path.join(out, "bind.pw")
        if not os.path.exists(pw_path):
            pw = "".join(random.SystemRandom().choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                         for _ in range(24))
            fd = os.open(pw_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pw)
        with open(pw_path) as f:
            pw = f.read().strip()
        write_ldif(case, os.path.join(out, "directory.ldif"), bind_dn, ssha(pw))
        write_config(out, a.uri, a.base, bind_dn, a.page_size)
    t2 = time.perf_counter()
    files = write_reports(case, out)
    t3 = time.perf_counter()
    info = case.counts()
    info.update({"seed": a.seed, "now": now, "base": a.base, "bindDN": bind_dn, "reportFiles": files,
                 "conflicts": {k: len(v) for k, v in case.conflicts.items()},
                 "conflictExamples": {k: v[:3] for k, v in case.conflicts.items()}})
    with open(os.path.join(out, "case.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    print("generated %d users, %d devices, %d connections, %d reported accounts in %d files "
          "(model %.1fs, ldif %.1fs, reports %.1fs) -> %s"
          % (info["users"], info["devices"], info["connections"], info["reportedAccounts"], files,
             t1 - t0, t2 - t1, t3 - t2, out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
