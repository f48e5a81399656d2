// Package conf reads ferryd's configuration, builds the control-plane state
// it describes, and serves the control API that ferryctl talks to.
package conf

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"ferry/fib"
)

// DefaultYAML is the embedded configuration ferryd runs without --config.
//
//go:embed default.yaml
var DefaultYAML []byte

// Config is ferryd's configuration file.
type Config struct {
	EAL []string `yaml:"eal"`
	// Cores are the EAL lcores that run pipelines, one each. Without -l,
	// -c or --lcores in eal, lcore N runs on CPU N; with them, the EAL's
	// mapping holds (several lcores may share a CPU).
	Cores []int  `yaml:"cores"`
	API   string `yaml:"api"`
	// APIGroup may use the control socket as root does; APIReadonlyGroup
	// may only show, get and read stats. Empty: root only.
	APIGroup         string `yaml:"api_group"`
	APIReadonlyGroup string `yaml:"api_readonly_group"`
	// Metrics is the address of the Prometheus endpoint; empty: none.
	Metrics   string `yaml:"metrics"`
	Hugepages string `yaml:"hugepages"` // auto, on or off
	Mbufs     int    `yaml:"mbufs"`     // 0: enough for every queue (MbufsNeeded)
	// RSSKey is the Toeplitz key ports hash flows with, in hex; empty for
	// the symmetric key (0x6d5a repeated), which puts both directions of
	// a flow on one pipeline.
	RSSKey string `yaml:"rss_key"`
	// RxBurst is how many packets a pipeline takes from each port's queue
	// in one pass (the pass is processed as a whole): larger passes spread
	// its fixed costs over more packets.
	RxBurst  int    `yaml:"rx_burst"`
	LogLevel string `yaml:"log_level"`
	// GCPercent is the Go collector's target (GOGC); 0 means
	// fib.DefaultGCPercent.
	GCPercent int      `yaml:"gc_percent"`
	Ports     []Port   `yaml:"ports"`
	Routes    []string `yaml:"routes"`
	Rules     []string `yaml:"rules"`
	Neighbors []string `yaml:"neighbors"`
	// GratuitousARP is how many gratuitous ARPs announce each address at
	// start, a second apart (default 3), so hosts that attach late learn too.
	GratuitousARP *int `yaml:"gratuitous_arp"`

	// Kernel-named knobs (net.ipv4.route.* and friends).
	ForwardUsePMTU  *bool `yaml:"forward_use_pmtu"`
	MinPMTU         int   `yaml:"min_pmtu"`
	MTUExpires      int   `yaml:"mtu_expires"`      // seconds
	RedirectNumber  *int  `yaml:"redirect_number"`  // redirects sent before going silent
	RedirectSilence int   `yaml:"redirect_silence"` // milliseconds
	// MultipathHashPolicy is fib_multipath_hash_policy: 0 L3, 1 L3+L4.
	MultipathHashPolicy int `yaml:"fib_multipath_hash_policy"`

	// ControlPlane, when present, gives every port a kernel interface
	// (punt and inject), as VPP's linux-cp does.
	ControlPlane *ControlPlane `yaml:"control_plane"`

	lines map[string]int // field path → line, for error messages
}

// ControlPlane is the `control_plane:` section.
type ControlPlane struct {
	// Netns is the network namespace of the kernel interfaces (and of the
	// routing daemon); empty: the one ferryd runs in.
	Netns string `yaml:"netns"`
	// PuntQueue frames may wait per port for its kernel interface, and
	// PuntRate frames a second per port reach it at most.
	PuntQueue int `yaml:"punt_queue"`
	PuntRate  int `yaml:"punt_rate"`
	// Mirror copies the namespace's kernel routes, rules and interface
	// addresses into the FIB (default on).
	Mirror *bool `yaml:"mirror"`
}

// MirrorOn reports whether the netlink mirror starts with ferryd.
func (cp *ControlPlane) MirrorOn() bool { return cp.Mirror == nil || *cp.Mirror }

// Port is one entry of `ports:`.
type Port struct {
	Name      string   `yaml:"name"`
	Dev       string   `yaml:"dev"`
	Addresses []string `yaml:"addresses"`
	MTU       int      `yaml:"mtu"`
	NoARP     bool     `yaml:"noarp"`
	// PointToPoint ports have one neighbour for every destination.
	PointToPoint bool `yaml:"pointopoint"`
	RxDesc       int  `yaml:"rx_desc"`
	TxDesc       int  `yaml:"tx_desc"`
	// KernelIface names the port's kernel interface when control_plane
	// is on; empty: the port's name.
	KernelIface string `yaml:"kernel_iface"`

	// net.ipv4.conf.<port>.* redirect knobs; nil means the kernel's default.
	AcceptRedirects *bool `yaml:"accept_redirects"`
	SecureRedirects *bool `yaml:"secure_redirects"`
	SendRedirects   *bool `yaml:"send_redirects"`

	// Neigh holds net.ipv4.neigh.<port>.* knobs by their kernel names,
	// e.g. base_reachable_time_ms: 30000, gc_thresh3: 1024, arp_accept: 1.
	Neigh map[string]int `yaml:"neigh"`
}

// Error names the config field (and line) that is wrong.
type Error struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Defaults for keys the file leaves out.
const (
	DefaultAPI = "/run/ferry/ferry.sock"
	// DefaultConfigPath is what ferryd reads without --config.
	DefaultConfigPath = "/etc/ferry/ferry.yaml"
	DefaultMbufs      = 8191
	// DefaultRxBurst and MaxRxBurst: a pass holds up to 512 packets over
	// all ports (pipeline.RxMax); with many ports each gets a fair share.
	DefaultRxBurst = 256
	MaxRxBurst     = 512
	DefaultMTU     = 1500
	DefaultRxDesc  = 1024
	DefaultTxDesc  = 1024
	MaxPorts       = 16
	MaxMTU         = 9000
	// The kernel path's defaults: a burst of a BGP full table (a TCP window
	// of full-sized segments) waits whole, and a flood to the router's own
	// addresses takes at most this much of a core.
	DefaultPuntQueue = 4096
	DefaultPuntRate  = 100000
	EthHeaderLen     = 14
	// MbufCache is the pool's per-lcore cache: DPDK's largest. A get or
	// put of at least the cache's size bypasses it for the pool's ring
	// (rte_mempool_do_generic_get), so with 256 an rx burst of 256 took
	// every buffer from the ring, cold: the device-bound bench forwarded
	// 46-62% more with 512 (bench/results/device.txt). SpareBuffers is
	// what a core keeps for packets it makes (pipeline.BurstSize).
	MbufCache    = 512
	SpareBuffers = 32
)

// Load reads and checks a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, b)
}

// Parse decodes and checks config text; name is used in errors.
func Parse(name string, b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(name, err)
	}
	c := &Config{lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, errEOF()) {
			return nil, &Error{File: name, Err: errors.New("empty configuration")}
		}
		return nil, yamlError(name, err)
	}
	c.lines = map[string]int{}
	if len(root.Content) > 0 {
		recordLines(root.Content[0], "", c.lines)
	}
	if err := c.check(name); err != nil {
		return nil, err
	}
	return c, nil
}

func errEOF() error {
	var n yaml.Node
	return yaml.NewDecoder(bytes.NewReader(nil)).Decode(&n)
}

// recordLines maps "ports[1].addresses[0]"-style paths to their lines.
func recordLines(n *yaml.Node, path string, out map[string]int) {
	if path != "" {
		out[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[p] = n.Content[i].Line
			recordLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			recordLines(c, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// Errorf builds an error for field, with its line when known.
func (c *Config) Errorf(file, field string, format string, args ...any) error {
	return &Error{File: file, Line: c.lineNear(field), Field: field, Err: fmt.Errorf(format, args...)}
}

// lineNear is the line of field or, for a missing key, of its parent.
func (c *Config) lineNear(field string) int {
	for field != "" {
		if l, ok := c.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// check fills in defaults and validates the configuration a section at a
// time, in the order the file is usually read, stopping at the first error.
func (c *Config) check(file string) error {
	for _, section := range []func(file string) error{
		c.checkDaemon,
		c.checkKnobs,
		c.checkCores,
		c.checkPorts,
		c.checkControlPlane,
		c.checkMetrics,
		c.checkMbufs,
	} {
		if err := section(file); err != nil {
			return err
		}
	}
	return nil
}

// checkDaemon covers ferryd's own settings: the API socket, the pass size,
// hugepages, logging and the collector.
func (c *Config) checkDaemon(file string) error {
	if c.API == "" {
		c.API = DefaultAPI
	}
	if c.RxBurst == 0 {
		c.RxBurst = DefaultRxBurst
	}
	if c.RxBurst < 1 || c.RxBurst > MaxRxBurst {
		return c.Errorf(file, "rx_burst", "%d out of range 1-%d", c.RxBurst, MaxRxBurst)
	}
	switch c.Hugepages {
	case "":
		c.Hugepages = "auto"
	case "auto", "on", "off":
	default:
		return c.Errorf(file, "hugepages", "must be auto, on or off, not %q", c.Hugepages)
	}
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		return c.Errorf(file, "log_level", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if c.GCPercent == 0 {
		c.GCPercent = fib.DefaultGCPercent
	}
	if c.GCPercent < 25 {
		return c.Errorf(file, "gc_percent", "%d is below 25 (the collector would run nearly all the time)", c.GCPercent)
	}
	return nil
}

// checkKnobs covers the kernel-named routing knobs.
func (c *Config) checkKnobs(file string) error {
	if c.MinPMTU != 0 && (c.MinPMTU < 68 || c.MinPMTU > 9000) {
		return c.Errorf(file, "min_pmtu", "%d out of range 68-9000", c.MinPMTU)
	}
	if c.MTUExpires < 0 {
		return c.Errorf(file, "mtu_expires", "must not be negative")
	}
	if c.RedirectNumber != nil && *c.RedirectNumber < 0 {
		return c.Errorf(file, "redirect_number", "must not be negative")
	}
	if c.MultipathHashPolicy != 0 && c.MultipathHashPolicy != 1 {
		return c.Errorf(file, "fib_multipath_hash_policy", "%d is not 0 (L3) or 1 (L3+L4)", c.MultipathHashPolicy)
	}
	if c.RedirectSilence < 0 {
		return c.Errorf(file, "redirect_silence", "must not be negative")
	}
	return nil
}

// checkCores covers the pipeline cores: at least one, each listed once.
func (c *Config) checkCores(file string) error {
	if len(c.Cores) == 0 {
		return c.Errorf(file, "cores", "at least one pipeline core is needed")
	}
	seen := map[int]bool{}
	for i, cpu := range c.Cores {
		f := fmt.Sprintf("cores[%d]", i)
		if cpu < 0 || cpu >= 1024 {
			return c.Errorf(file, f, "core %d out of range", cpu)
		}
		if seen[cpu] {
			return c.Errorf(file, f, "core %d listed twice", cpu)
		}
		seen[cpu] = true
	}
	return nil
}

// checkPorts covers the ports and the RSS key they hash flows with.
func (c *Config) checkPorts(file string) error {
	if len(c.Ports) == 0 {
		return c.Errorf(file, "ports", "at least one port is needed")
	}
	if len(c.Ports) > MaxPorts {
		return c.Errorf(file, "ports", "%d ports, at most %d", len(c.Ports), MaxPorts)
	}
	names := map[string]bool{}
	for i := range c.Ports {
		if err := c.checkPort(file, i, names); err != nil {
			return err
		}
	}
	if _, err := c.RSSKeyBytes(); err != nil {
		return c.Errorf(file, "rss_key", "%v", err)
	}
	return nil
}

// checkPort fills in the defaults of ports[i] and checks it; names holds
// the names of the ports before it.
func (c *Config) checkPort(file string, i int, names map[string]bool) error {
	p := &c.Ports[i]
	f := fmt.Sprintf("ports[%d]", i)
	if p.Name == "" {
		return c.Errorf(file, f+".name", "missing")
	}
	if !validName(p.Name) {
		return c.Errorf(file, f+".name", "%q: use letters, digits, '-', '_' or '.' (at most 15)", p.Name)
	}
	if names[p.Name] {
		return c.Errorf(file, f+".name", "port %q defined twice", p.Name)
	}
	names[p.Name] = true
	if p.Dev == "" {
		return c.Errorf(file, f+".dev", "missing (e.g. \"net_tap0,iface=ftap0\" or a PCI address)")
	}
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
	if p.MTU < 68 || p.MTU > MaxMTU {
		return c.Errorf(file, f+".mtu", "%d out of range 68-%d", p.MTU, MaxMTU)
	}
	if p.RxDesc == 0 {
		p.RxDesc = DefaultRxDesc
	}
	if p.TxDesc == 0 {
		p.TxDesc = DefaultTxDesc
	}
	if _, err := p.NeighParams(); err != nil {
		return c.Errorf(file, f+".neigh", "%v", err)
	}
	for j, a := range p.Addresses {
		if _, err := ParseAddr(a); err != nil {
			return c.Errorf(file, fmt.Sprintf("%s.addresses[%d]", f, j), "%v", err)
		}
	}
	return nil
}

// checkMetrics covers the Prometheus endpoint's address.
func (c *Config) checkMetrics(file string) error {
	if c.Metrics != "" {
		if _, port, err := net.SplitHostPort(c.Metrics); err != nil || port == "" {
			return c.Errorf(file, "metrics", "%q is not HOST:PORT (e.g. 127.0.0.1:9469)", c.Metrics)
		}
	}
	return nil
}

// checkControlPlane fills in the kernel path's defaults and checks its
// names: kernel interfaces are distinct, valid interface names.
func (c *Config) checkControlPlane(file string) error {
	cp := c.ControlPlane
	if cp == nil {
		return nil
	}
	if cp.Netns != "" && (strings.ContainsAny(cp.Netns, "/ ") || cp.Netns == "." || cp.Netns == "..") {
		return c.Errorf(file, "control_plane.netns", "%q is not a namespace name", cp.Netns)
	}
	if cp.PuntQueue == 0 {
		cp.PuntQueue = DefaultPuntQueue
	}
	if cp.PuntRate == 0 {
		cp.PuntRate = DefaultPuntRate
	}
	if cp.PuntQueue < 16 || cp.PuntQueue > 1<<20 {
		return c.Errorf(file, "control_plane.punt_queue", "%d out of range 16-%d", cp.PuntQueue, 1<<20)
	}
	if cp.PuntRate < 100 {
		return c.Errorf(file, "control_plane.punt_rate", "%d frames a second is too few to keep a routing session up (at least 100)", cp.PuntRate)
	}
	seen := map[string]int{}
	for i := range c.Ports {
		p := &c.Ports[i]
		if p.KernelIface == "" {
			p.KernelIface = p.Name
		}
		f := fmt.Sprintf("ports[%d].kernel_iface", i)
		if !validName(p.KernelIface) {
			return c.Errorf(file, f, "%q is not an interface name (at most 15 of letters, digits, '-', '_', '.')", p.KernelIface)
		}
		if j, ok := seen[p.KernelIface]; ok {
			return c.Errorf(file, f, "%q is also ports[%d]'s kernel interface", p.KernelIface, j)
		}
		seen[p.KernelIface] = i
	}
	return nil
}

// checkMbufs sizes the buffer pool: by default to what every queue holds,
// and a configured size that cannot fill them is refused, since a pool
// that runs dry stops receive queues without a word.
func (c *Config) checkMbufs(file string) error {
	need, how := c.MbufsNeeded()
	if c.Mbufs == 0 {
		c.Mbufs = max(DefaultMbufs, need)
		return nil
	}
	if c.Mbufs < need {
		return c.Errorf(file, "mbufs", "%d buffers cannot fill the queues: %s = %d needed (raise mbufs, or lower cores, rx_desc or tx_desc)", c.Mbufs, how, need)
	}
	return nil
}

// MbufsNeeded is how many packet buffers the data plane may hold at once,
// and how that was counted: every core's rx and tx descriptors on every
// port, a pass and spare buffers per core, and the pool's per-lcore
// caches (up to 1.5 times their size, the main lcore's too).
func (c *Config) MbufsNeeded() (int, string) {
	cores := len(c.Cores)
	desc := 0
	for _, p := range c.Ports {
		rx, tx := p.RxDesc, p.TxDesc
		if rx == 0 {
			rx = DefaultRxDesc
		}
		if tx == 0 {
			tx = DefaultTxDesc
		}
		desc += rx + tx
	}
	perCore := MaxRxBurst + SpareBuffers
	cache := (cores + 1) * MbufCache * 3 / 2
	need := cores*desc + cores*perCore + cache
	how := fmt.Sprintf("%d cores x %d descriptors over %d ports + %d cores x %d in a pass + %d in lcore caches",
		cores, desc, len(c.Ports), cores, perCore, cache)
	return need, how
}

// RSSKeyBytes decodes rss_key; nil means the symmetric key.
func (c *Config) RSSKeyBytes() ([]byte, error) {
	s := strings.ReplaceAll(strings.TrimSpace(c.RSSKey), ":", "")
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex bytes (e.g. 6d5a6d5a..., colons allowed)", c.RSSKey)
	}
	if len(b) != 40 && len(b) != 52 {
		return nil, fmt.Errorf("%d bytes: a Toeplitz key has 40 (most NICs) or 52 (i40e, ice)", len(b))
	}
	return b, nil
}

// FrameRoom is the data room a packet buffer needs for the largest MTU of
// any port, Ethernet header included: packets stay in one buffer each.
func (c *Config) FrameRoom() int {
	mtu := DefaultMTU
	for _, p := range c.Ports {
		mtu = max(mtu, p.MTU)
	}
	return max(2048, (mtu+EthHeaderLen+63)&^63)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ParseAddr parses an interface address "A.B.C.D/LEN" (a bare address is /32).
func ParseAddr(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		s += "/32"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address with prefix length", s)
	}
	a := p.Addr().As4()
	if a[0] == 0 || a[0] == 127 || a[0] >= 224 {
		return netip.Prefix{}, fmt.Errorf("%q cannot be a port address", s)
	}
	return p, nil
}

// DevName is the ethdev name a dev string creates: the part before the
// first comma ("net_tap0,iface=ftap0" → "net_tap0").
func DevName(dev string) string {
	if i := strings.IndexByte(dev, ','); i >= 0 {
		return dev[:i]
	}
	return dev
}

// IsVdev reports whether dev names a virtual device (given to --vdev) rather
// than a PCI device (given to -a).
func IsVdev(dev string) bool {
	return strings.HasPrefix(dev, "net_") || strings.HasPrefix(dev, "eth_")
}

// yamlError turns yaml's (possibly multi-line) errors into one Error with
// the first problem's line.
func yamlError(file string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	msg = strings.Replace(msg, " in type conf.Config", "", 1)
	msg = strings.Replace(msg, " in type conf.Port", " in a port", 1)
	return &Error{File: file, Line: line, Err: errors.New(msg)}
}
