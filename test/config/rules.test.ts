// Every rule of SPEC §2: for each, configs that pass and configs that fail with the expected field path.
import { describe, expect, it } from "vitest";
import {
  type CheckOptions,
  type ConfigInput,
  formatCheck,
  type Problem,
  parseConfig,
  type StorageType,
  sampleConfig,
} from "../../src/config/index.js";

type Raw = Record<string, unknown> & { Network: Record<string, unknown>[] };

function base(type: StorageType = "CephConf"): Raw {
  return structuredClone(sampleConfig(type)) as unknown as Raw;
}

function check(edit: (c: Raw) => void, type: StorageType = "CephConf", opts?: CheckOptions) {
  const c = base(type);
  edit(c);
  return parseConfig(c, opts);
}

function problemsOf(edit: (c: Raw) => void, type: StorageType = "CephConf", opts?: CheckOptions): Problem[] {
  const r = check(edit, type, opts);
  return r.ok ? [] : [...r.problems];
}

const nodes5 = [
  "10.0.0.1 ceph-1",
  "10.0.0.2 ceph-2",
  "10.0.0.3 ceph-3",
  "10.0.0.4 ceph-4",
  "10.0.0.5 ceph-5",
];
const secondNic = {
  Bridge: "br_pub",
  MacAddress: "52:54:00:5a:00:02",
  Ipaddr: "172.16.0.10",
  Netmask: "255.255.0.0",
  Gateway: "",
  IsMgmt: false,
  IsDefRoute: false,
};

interface Rule {
  rule: string;
  valid: ((c: Raw) => void)[];
  invalid: { edit: (c: Raw) => void; path: string; message: RegExp; type?: StorageType }[];
  type?: StorageType;
}

const RULES: Rule[] = [
  {
    rule: "unknown fields are refused, at top level and in a NIC",
    valid: [(c) => Object.assign(c, { ImageName: "other.img", DomainType: "qemu" })],
    invalid: [
      {
        edit: (c) => Object.assign(c, { MemorySizeInGb: 8 }),
        path: "MemorySizeInGb",
        message: /not a known field/,
      },
      {
        edit: (c) => Object.assign(c.Network[0]!, { Mtu: 9000 }),
        path: "Network[0].Mtu",
        message: /not a known/,
      },
    ],
  },
  {
    rule: "Node has 3 or 5 entries",
    valid: [(c) => (c.Node = nodes5), (c) => (c.Node = nodes5.slice(0, 3))],
    invalid: [
      {
        edit: (c) => (c.Node = nodes5.slice(0, 4)),
        path: "Node",
        message: /has 4 entries; a cluster needs 3 or 5/,
      },
      { edit: (c) => (c.Node = nodes5.slice(0, 2)), path: "Node", message: /has 2 entries/ },
      { edit: (c) => (c.Node = nodes5.slice(0, 1)), path: "Node", message: /allowed only for the demo/ },
      { edit: (c) => (c.Node = []), path: "Node", message: /has 0 entries/ },
    ],
  },
  {
    rule: 'Node entries are "<ipv4> <hostname>"',
    valid: [(c) => (c.Node = ["10.0.0.1   a", " 10.0.0.2 b.example.com", "10.0.0.3 c-3"])],
    invalid: [
      { edit: (c) => ((c.Node as string[])[1] = "10.0.0.2"), path: "Node[1]", message: /not of the form/ },
      { edit: (c) => ((c.Node as string[])[1] = "10.0.0.256 b"), path: "Node[1]", message: /not an IPv4/ },
      {
        edit: (c) => ((c.Node as string[])[2] = "10.0.0.3 c_3"),
        path: "Node[2]",
        message: /not a valid host name/,
      },
      { edit: (c) => ((c.Node as string[])[2] = "10.0.0.3 1234"), path: "Node[2]", message: /neither/ },
      { edit: (c) => (c.Node = "10.0.0.1 a"), path: "Node", message: /must be a list/ },
    ],
  },
  {
    rule: "Node IPs are unique",
    valid: [(c) => (c.Node = ["10.0.0.1 a", "10.0.0.2 b", "10.0.0.3 c"])],
    invalid: [
      {
        edit: (c) => (c.Node = ["10.0.0.1 a", "10.0.0.2 b", "10.0.0.1 c"]),
        path: "Node[2]",
        message: /IP 10.0.0.1 is already used by Node\[0\]/,
      },
    ],
  },
  {
    rule: "Node names are unique (case-insensitive, as DNS)",
    valid: [(c) => (c.Node = ["10.0.0.1 a", "10.0.0.2 b", "10.0.0.3 ab"])],
    invalid: [
      {
        edit: (c) => (c.Node = ["10.0.0.1 a", "10.0.0.2 A", "10.0.0.3 c"]),
        path: "Node[1]",
        message: /host name A is already used by Node\[0\]/,
      },
    ],
  },
  {
    rule: "CPU is an integer ≥ 4",
    valid: [(c) => (c.CPU = 4), (c) => (c.CPU = 64)],
    invalid: [
      { edit: (c) => (c.CPU = 3), path: "CPU", message: /at least 4/ },
      { edit: (c) => (c.CPU = 4.5), path: "CPU", message: /whole number/ },
      { edit: (c) => (c.CPU = "8"), path: "CPU", message: /must be a number/ },
      { edit: (c) => delete c.CPU, path: "CPU", message: /^is required$/ },
    ],
  },
  {
    rule: "MemorySizeInGB is an integer ≥ 8",
    valid: [(c) => (c.MemorySizeInGB = 8)],
    invalid: [
      { edit: (c) => (c.MemorySizeInGB = 7), path: "MemorySizeInGB", message: /at least 8/ },
      { edit: (c) => (c.MemorySizeInGB = 8.5), path: "MemorySizeInGB", message: /whole number/ },
    ],
  },
  {
    rule: "Type is CephConf or FileConf",
    valid: [(c) => (c.Type = "CephConf")],
    invalid: [
      { edit: (c) => (c.Type = "Ceph"), path: "Type", message: /must be "CephConf" or "FileConf"/ },
      { edit: (c) => delete c.Type, path: "Type", message: /^is required$/ },
    ],
  },
  {
    rule: "CephConf needs PoolName and MonAddrs (ip:port)",
    valid: [(c) => (c.MonAddrs = ["10.9.9.9:3300"]), (c) => delete c.ImageFolder],
    invalid: [
      { edit: (c) => delete c.PoolName, path: "PoolName", message: /required for CephConf/ },
      { edit: (c) => delete c.MonAddrs, path: "MonAddrs", message: /required for CephConf/ },
      { edit: (c) => (c.MonAddrs = []), path: "MonAddrs", message: /at least one/ },
      { edit: (c) => (c.MonAddrs = ["10.0.0.1"]), path: "MonAddrs[0]", message: /not an ip:port/ },
      { edit: (c) => (c.MonAddrs = ["10.0.0.1:70000"]), path: "MonAddrs[0]", message: /not an ip:port/ },
      { edit: (c) => (c.PoolName = "zs/tack"), path: "PoolName", message: /not a valid pool name/ },
    ],
  },
  {
    rule: "FileConf needs ImageFolder, an absolute path",
    type: "FileConf",
    valid: [(c) => (c.ImageFolder = "/srv/nfs/zsha")],
    invalid: [
      { edit: (c) => delete c.ImageFolder, path: "ImageFolder", message: /required for FileConf/ },
      { edit: (c) => (c.ImageFolder = "srv/zsha"), path: "ImageFolder", message: /not an absolute path/ },
      { edit: (c) => (c.ImageFolder = "/srv/../etc"), path: "ImageFolder", message: /must not contain/ },
    ],
  },
  {
    rule: "MAC addresses are valid unicast MACs",
    valid: [(c) => (c.Network[0]!.MacAddress = "FA:16:3E:00:00:01")],
    invalid: [
      {
        edit: (c) => (c.Network[0]!.MacAddress = "52:54:00:zz:00:01"),
        path: "Network[0].MacAddress",
        message: /not a MAC address/,
      },
      {
        edit: (c) => (c.Network[0]!.MacAddress = "52-54-00-00-00-01"),
        path: "Network[0].MacAddress",
        message: /not a MAC address/,
      },
      {
        edit: (c) => (c.Network[0]!.MacAddress = "01:00:5e:00:00:01"),
        path: "Network[0].MacAddress",
        message: /multicast/,
      },
    ],
  },
  {
    rule: "MAC addresses are unique (case-insensitive)",
    valid: [(c) => c.Network.push({ ...secondNic })],
    invalid: [
      {
        edit: (c) => c.Network.push({ ...secondNic, MacAddress: "52:54:00:5A:00:01" }),
        path: "Network[1].MacAddress",
        message: /already used by Network\[0\]/,
      },
    ],
  },
  {
    rule: "exactly one NIC is IsMgmt",
    valid: [(c) => c.Network.push({ ...secondNic })],
    invalid: [
      { edit: (c) => (c.Network[0]!.IsMgmt = false), path: "Network", message: /0 NICs with IsMgmt/ },
      {
        edit: (c) => c.Network.push({ ...secondNic, IsMgmt: true }),
        path: "Network",
        message: /2 NICs with IsMgmt true; exactly one/,
      },
      { edit: (c) => (c.Network = []), path: "Network", message: /at least one NIC/ },
    ],
  },
  {
    rule: "exactly one NIC is IsDefRoute, and it has a Gateway",
    valid: [
      (c) => {
        c.Network[0]!.IsDefRoute = false;
        c.Network.push({ ...secondNic, IsDefRoute: true, Gateway: "172.16.0.1" });
      },
    ],
    invalid: [
      { edit: (c) => (c.Network[0]!.IsDefRoute = false), path: "Network", message: /0 NICs with IsDefRoute/ },
      {
        edit: (c) => c.Network.push({ ...secondNic, IsDefRoute: true }),
        path: "Network",
        message: /2 NICs with IsDefRoute/,
      },
      {
        edit: (c) => (c.Network[0]!.Gateway = ""),
        path: "Network[0].Gateway",
        message: /required on the IsDefRoute/,
      },
      {
        edit: (c) => delete c.Network[0]!.IsDefRoute,
        path: "Network[0].IsDefRoute",
        message: /^is required$/,
      },
    ],
  },
  {
    rule: "NIC fields: bridge name, IPv4 Ipaddr/Gateway, contiguous Netmask",
    valid: [(c) => (c.Network[0]!.Netmask = "255.255.252.0")],
    invalid: [
      {
        edit: (c) => (c.Network[0]!.Bridge = "a-very-long-bridge"),
        path: "Network[0].Bridge",
        message: /bridge name/,
      },
      { edit: (c) => (c.Network[0]!.Ipaddr = "10.0.0"), path: "Network[0].Ipaddr", message: /not an IPv4/ },
      {
        edit: (c) => (c.Network[0]!.Ipaddr = "10.0.0.01"),
        path: "Network[0].Ipaddr",
        message: /not an IPv4/,
      },
      { edit: (c) => (c.Network[0]!.Gateway = "gw"), path: "Network[0].Gateway", message: /not an IPv4/ },
      {
        edit: (c) => (c.Network[0]!.Netmask = "255.0.255.0"),
        path: "Network[0].Netmask",
        message: /not contiguous/,
      },
      { edit: (c) => (c.Network[0]!.IsMgmt = "yes"), path: "Network[0].IsMgmt", message: /true or false/ },
    ],
  },
  {
    rule: "the MN-VM's addresses are not a node's own IP",
    valid: [(c) => (c.Network[0]!.Ipaddr = "192.168.255.204")],
    invalid: [
      {
        edit: (c) => (c.Network[0]!.Ipaddr = "192.168.255.206"),
        path: "Network[0].Ipaddr",
        message: /192.168.255.206 is the IP of node ceph-2 \(Node\[1\]\); the MN-VM needs its own address/,
      },
      {
        edit: (c) => (c.Network[0]!.Ipaddr = "10.0.0.1@ceph-1, 192.168.255.207@ceph-2, 10.0.0.3@ceph-3"),
        path: "Network[0].Ipaddr",
        message: /is the IP of node ceph-3/,
      },
    ],
  },
  {
    rule: "DNS and ConsoleProxyOverriddenIP are IPv4",
    valid: [(c) => (c.DNS = []), (c) => (c.ConsoleProxyOverriddenIP = "10.1.1.1"), (c) => delete c.DNS],
    invalid: [
      { edit: (c) => (c.DNS = ["8.8.8.8", "dns.example"]), path: "DNS[1]", message: /not an IPv4/ },
      {
        edit: (c) => (c.ConsoleProxyOverriddenIP = "1.2.3"),
        path: "ConsoleProxyOverriddenIP",
        message: /IPv4/,
      },
    ],
  },
  {
    rule: "per-node values (ip@host) cover every node, name only known hosts, once each",
    valid: [
      (c) => {
        c.Network[0]!.Ipaddr = "172.20.198.24@ceph-1, 172.20.200.24@ceph-2,172.20.210.24@ceph-3";
        c.Network[0]!.Gateway = "172.20.198.1@ceph-1, 172.20.200.1@ceph-2, 172.20.210.1@ceph-3";
        c.Network[0]!.Netmask = "255.255.255.0@ceph-1, 255.255.255.0@ceph-2, 255.255.0.0@ceph-3";
        c.ConsoleProxyOverriddenIP = "1.1.1.1@ceph-1, 1.1.1.2@ceph-2, 1.1.1.3@ceph-3";
      },
    ],
    invalid: [
      {
        edit: (c) => (c.Network[0]!.Ipaddr = "172.20.198.24@ceph-1, 172.20.200.24@ceph-2"),
        path: "Network[0].Ipaddr",
        message: /every node needs a value; missing: ceph-3/,
      },
      {
        edit: (c) =>
          (c.Network[0]!.Ipaddr = "1.1.1.1@ceph-1, 1.1.1.2@ceph-2, 1.1.1.3@ceph-3, 1.1.1.4@ceph-9"),
        path: "Network[0].Ipaddr",
        message: /"ceph-9" .* is not a node of this cluster \(nodes: ceph-1, ceph-2, ceph-3\)/,
      },
      {
        edit: (c) =>
          (c.Network[0]!.Ipaddr = "1.1.1.1@ceph-1, 1.1.1.2@ceph-1, 1.1.1.3@ceph-2, 1.1.1.4@ceph-3"),
        path: "Network[0].Ipaddr",
        message: /node "ceph-1" is given more than once/,
      },
      {
        edit: (c) => (c.Network[0]!.Ipaddr = "1.1.1.1@ceph-1, 1.1.1@ceph-2, 1.1.1.3@ceph-3"),
        path: "Network[0].Ipaddr",
        message: /"1.1.1" is not an IPv4 address .* in "1.1.1@ceph-2"/,
      },
      {
        edit: (c) => (c.Network[0]!.Ipaddr = "1.1.1.1@ceph-1, 1.1.1.2, 1.1.1.3@ceph-3"),
        path: "Network[0].Ipaddr",
        message: /exactly one '@'/,
      },
      {
        edit: (c) => (c.Network[0]!.Netmask = "255.255.255.0@ceph-1, 255.0.255.0@ceph-2, 255.0.0.0@ceph-3"),
        path: "Network[0].Netmask",
        message: /not contiguous/,
      },
      {
        edit: (c) => (c.ConsoleProxyOverriddenIP = "1.1.1.1@ceph-1"),
        path: "ConsoleProxyOverriddenIP",
        message: /missing: ceph-2, ceph-3/,
      },
      {
        edit: (c) =>
          c.Network.push({ ...secondNic, Ipaddr: "1.1.1.1@ceph-1, 1.1.1.2@ceph-2, 1.1.1.3@ceph-3" }),
        path: "Network[1].Ipaddr",
        message: /only on the IsMgmt NIC/,
      },
    ],
  },
  {
    rule: "ChronyServers: IPs or host names, nobody told to sync from itself",
    valid: [
      (c) => (c.ChronyServers = ["192.168.255.205", "ceph-2", "ntp.example.com"]),
      (c) => (c.ChronyServers = []),
    ],
    invalid: [
      {
        edit: (c) => (c.ChronyServers = ["192.168.255.205", "ceph-1"]),
        path: "ChronyServers[1]",
        message: /same node ceph-1 as ChronyServers\[0\]; it would be told to sync from itself/,
      },
      {
        edit: (c) => (c.ChronyServers = ["192.168.255.210"]),
        path: "ChronyServers[0]",
        message: /address of the MN-VM/,
      },
      {
        edit: (c) => {
          c.Network[0]!.Ipaddr = "10.1.0.5@ceph-1, 10.2.0.5@ceph-2, 10.3.0.5@ceph-3";
          c.ChronyServers = ["10.2.0.5"];
        },
        path: "ChronyServers[0]",
        message: /address of the MN-VM/,
      },
      {
        edit: (c) => (c.ChronyServers = ["ntp.a", "NTP.a"]),
        path: "ChronyServers[1]",
        message: /listed twice/,
      },
      {
        edit: (c) => (c.ChronyServers = ["bad host"]),
        path: "ChronyServers[0]",
        message: /not a valid host name/,
      },
    ],
  },
  {
    rule: "our own fields: image/domain names, port, timing",
    valid: [(c) => (c.Timing = { OwnerLeaseMs: 8000, FenceMarginMs: 2000 }), (c) => (c.PeerPort = 17780)],
    invalid: [
      { edit: (c) => (c.ImageName = "a/b"), path: "ImageName", message: /not a valid image name/ },
      { edit: (c) => (c.DomainType = "xen"), path: "DomainType", message: /"kvm" or "qemu"/ },
      { edit: (c) => (c.PeerPort = 0), path: "PeerPort", message: /at least 1/ },
      {
        edit: (c) => (c.Timing = { OwnerLeaseMs: 1000, FenceMarginMs: 1000 }),
        path: "Timing.FenceMarginMs",
        message: /smaller than Timing.OwnerLeaseMs/,
      },
      { edit: (c) => (c.Timing = { Tick: 5 }), path: "Timing.Tick", message: /not a known field/ },
    ],
  },
];

describe("config rules (SPEC §2)", () => {
  for (const rule of RULES) {
    describe(rule.rule, () => {
      rule.valid.forEach((edit, i) => {
        it(`accepts valid case ${i + 1}`, () => {
          expect(formatCheck(check(edit, rule.type))).toBe("config file check pass");
        });
      });
      rule.invalid.forEach(({ edit, path, message, type }, i) => {
        it(`refuses invalid case ${i + 1} at ${path}`, () => {
          const problems = problemsOf(edit, type ?? rule.type);
          expect(problems.find((p) => p.path === path && message.test(p.message))).toBeDefined();
          // Every problem is one sentence on one line.
          for (const p of problems) expect(p.message).not.toMatch(/\n/);
        });
      });
    });
  }

  it("allows a single node only when the check is told it is a demo", () => {
    const single = (c: Raw) => {
      c.Node = ["127.0.0.1 demo-1"];
      c.ChronyServers = [];
    };
    expect(check(single).ok).toBe(false);
    expect(check(single, "FileConf", { allowSingleNode: true }).ok).toBe(true);
  });
});

describe("every problem is reported, not only the first", () => {
  it("lists each broken field once, in file order", () => {
    const problems = problemsOf((c) => {
      c.Node = ["10.0.0.1 a", "10.0.0.1 b"];
      c.CPU = 2;
      c.MemorySizeInGB = 4;
      delete c.PoolName;
      c.DNS = ["x"];
      c.Network[0]!.MacAddress = "zz";
      c.Network[0]!.IsDefRoute = false;
      (c as Record<string, unknown>).Extra = true;
    });
    expect(problems.map((p) => p.path)).toEqual([
      "Node",
      "Node[1]",
      "MemorySizeInGB",
      "CPU",
      "PoolName",
      "DNS[0]",
      "Network[0].MacAddress",
      "Network",
      "Extra",
    ]);
  });

  it("still checks the other fields when the top-level input is partly of the wrong type", () => {
    const r = parseConfig({ Node: "nope", CPU: 4, Network: [{}] } satisfies Record<string, unknown>);
    expect(r.ok).toBe(false);
    const paths = r.ok ? [] : r.problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "Node",
        "MemorySizeInGB",
        "Type",
        "Network[0].Bridge",
        "Network[0].MacAddress",
        "Network[0].IsMgmt",
      ]),
    );
    expect(paths).not.toContain("CPU");
  });
});

describe("formatCheck", () => {
  it("prints exactly the pass line, or one problem per line naming the field", () => {
    expect(formatCheck(parseConfig(sampleConfig("FileConf")))).toBe("config file check pass");
    const text = formatCheck(
      check((c) => {
        c.CPU = 2;
        c.Network[0]!.Ipaddr = "300.1.1.1";
      }),
    );
    expect(text).toBe(
      [
        "CPU: must be at least 4 (MN-VM vCPUs, at least 4)",
        'Network[0].Ipaddr: "300.1.1.1" is not an IPv4 address (expected a.b.c.d)',
      ].join("\n"),
    );
  });

  it("accepts a file as the earlier suite wrote it (no fields of our own)", () => {
    const c: ConfigInput = {
      Node: ["172.20.198.24 ceph-1", "172.20.198.25 ceph-2", "172.20.198.26 ceph-3"],
      MemorySizeInGB: 8,
      CPU: 4,
      Type: "CephConf",
      MonAddrs: ["172.20.198.24:6789"],
      ChronyServers: ["172.20.198.24"],
      PoolName: "zstack",
      ImageFolder: "/var/lib/zsha",
      DNS: ["223.5.5.5"],
      Network: [
        {
          Bridge: "br_eth0",
          MacAddress: "fa:3f:a2:4c:54:00",
          Ipaddr: "172.20.198.100",
          Netmask: "255.255.0.0",
          Gateway: "172.20.0.1",
          IsMgmt: true,
          IsDefRoute: true,
        },
      ],
      ConsoleProxyOverriddenIP: "",
      AllowResetRootPassword: false,
    };
    const r = parseConfig(c);
    expect(formatCheck(r)).toBe("config file check pass");
    expect(r.ok && r.config.ImageName).toBe("mnvm.img");
    expect(r.ok && r.config.Timing.OwnerLeaseMs).toBe(5000);
  });
});
