package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"ferry/conf"
	"ferry/dpdk"
)

// ealArgs completes the configured EAL arguments: one --vdev or -a per
// port, a main lcore outside the pipeline cores, and the hugepage fallback.
func ealArgs(cfg *conf.Config, log *zap.Logger) ([]string, string, error) {
	args := slices.Clone(cfg.EAL)
	has := func(names ...string) bool { return hasArg(args, names...) }
	prefix := "rte"
	for i, a := range args {
		if a == "--file-prefix" && i+1 < len(args) {
			prefix = args[i+1]
		} else if strings.HasPrefix(a, "--file-prefix=") {
			prefix = strings.TrimPrefix(a, "--file-prefix=")
		}
	}
	if !has("-l", "-c", "--lcores") {
		args = append(args, lcoreArgs(cfg.Cores)...)
	}
	if !has("--no-huge") {
		// Files a killed ferryd left hold hugepages: free them before counting.
		if n, err := dpdk.RemoveStaleHugeFiles(prefix); err != nil {
			log.Warn("could not check for stale hugepage files", zap.String("prefix", prefix), zap.Error(err))
		} else if n > 0 {
			log.Info("removed stale hugepage files", zap.String("prefix", prefix), zap.Int("files", n))
		}
		useHuge := false
		switch cfg.Hugepages {
		case "off":
		default:
			mb := 512
			for i, a := range args {
				if (a == "-m" || a == "--socket-mem") && i+1 < len(args) {
					if v, err := strconv.Atoi(strings.Split(args[i+1], ",")[0]); err == nil && v > 0 {
						mb = v
					}
				}
			}
			if err := dpdk.EnsureHugepages(mb); err != nil {
				if cfg.Hugepages == "on" {
					return nil, prefix, &refusedError{fmt.Errorf("hugepages: on, but %d MB of hugepages cannot be had: %w; reserve them at boot "+
						"(kernel command line: default_hugepagesz=1G hugepagesz=1G hugepages=N, or hugepages=N for 2 MiB pages), or now with "+
						"'echo %d > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages' and hugetlbfs mounted on /dev/hugepages; "+
						"or set hugepages: auto to fall back to --no-huge", mb, err, (mb+1)/2)}
				}
				log.Warn("hugepages unavailable, falling back to --no-huge", zap.Error(err))
			} else {
				useHuge = true
			}
		}
		if !useHuge {
			args = append(args, "--no-huge")
			if !has("-m", "--socket-mem") {
				args = append(args, "-m", "1024")
			}
		} else if !has("--huge-unlink") {
			// Unlinked hugepage files vanish with the process, even a killed one.
			args = append(args, "--huge-unlink")
		}
	}
	for _, p := range cfg.Ports {
		if conf.IsVdev(p.Dev) {
			args = append(args, "--vdev", p.Dev)
		} else {
			args = append(args, "-a", p.Dev)
		}
	}
	return args, prefix, nil
}

// hasArg reports whether args hold one of the options names.
func hasArg(args []string, names ...string) bool {
	for _, a := range args {
		for _, n := range names {
			if a == n || strings.HasPrefix(a, n+"=") {
				return true
			}
		}
	}
	return false
}

// pipelineCPUs checks every pipeline lcore against the running EAL and
// returns the CPUs they run on, several lcores to a CPU as --lcores maps
// them.
func pipelineCPUs(cores []int, log *zap.Logger) ([]int, error) {
	var cpus []int
	for i, c := range cores {
		l, err := dpdk.PipelineLcore(c)
		if err != nil {
			return nil, fmt.Errorf("cores[%d]: %w", i, err)
		}
		log.Info("pipeline lcore", zap.Int("queue", i), zap.Int("lcore", c), zap.Ints("cpus", l.CPUs), zap.Int("socket", l.Socket))
		for _, cpu := range l.CPUs {
			if !slices.Contains(cpus, cpu) {
				cpus = append(cpus, cpu)
			}
		}
	}
	slices.Sort(cpus)
	return cpus, nil
}

// logRSS says how a port's flows reach its pipelines: spread by the
// device's RSS, or (with a warning) by whatever the device does instead.
func logRSS(log *zap.Logger, pc conf.Port, r dpdk.RSS, ownKey bool) {
	if r.Queues < 2 {
		return
	}
	fields := []zap.Field{zap.String("port", pc.Name), zap.String("driver", r.Driver), zap.Int("queues", r.Queues)}
	if r.Spreads() {
		key := "symmetric"
		if ownKey {
			key = "configured"
		}
		if !r.KeySet {
			key = "the PMD's (rss_key has another length than the device's)"
		}
		log.Info("RSS spreads flows over the pipelines", append(fields, zap.String("hash", rssHashNames(r.Hash)), zap.Int("reta", r.RETA), zap.String("key", key))...)
		return
	}
	if r.RETAErr != nil {
		fields = append(fields, zap.NamedError("reta", r.RETAErr))
	}
	instead := "each queue gets what the device puts in it: flows may all land on one pipeline"
	switch {
	case strings.HasPrefix(r.Driver, "net_tap"):
		instead = "the kernel's tap queue selection spreads flows over the queues instead (by flow hash, both directions of a flow on one queue)"
	case strings.HasPrefix(r.Driver, "net_memif"):
		instead = "the memif peer picks each packet's queue instead"
	}
	log.Warn("port cannot hash flows onto its queues (no RSS)", append(fields, zap.String("instead", instead))...)
}

// rssHashNames names the hash functions in use.
func rssHashNames(hf uint64) string {
	var names []string
	for _, h := range []struct {
		bits uint64
		name string
	}{{dpdk.RSSIPv4 | dpdk.RSSIPv4Other, "ipv4"}, {dpdk.RSSIPv4TCP, "ipv4-tcp"}, {dpdk.RSSIPv4UDP, "ipv4-udp"}} {
		if hf&h.bits != 0 {
			names = append(names, h.name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("%#x", hf)
	}
	return strings.Join(names, ",")
}

// warnNUMA says when a port's device is on another NUMA node than a
// pipeline that polls it: its descriptors and packets then cross the
// interconnect on every packet.
func warnNUMA(log *zap.Logger, port string, socket int, cores []int) {
	if socket < 0 {
		return
	}
	for _, c := range cores {
		if l, err := dpdk.LcoreInfo(c); err == nil && l.Socket != socket {
			log.Warn("port and pipeline on different NUMA nodes", zap.String("port", port), zap.Int("port_node", socket),
				zap.Int("lcore", c), zap.Int("lcore_node", l.Socket))
		}
	}
}

// lcoreArgs maps each pipeline lcore N onto CPU N, as -l would, and adds a
// main lcore (the control plane's, which mostly sleeps) on a CPU outside
// them where there is one.
func lcoreArgs(cores []int) []string {
	allowed, err := getAffinity(0)
	free := -1
	if err == nil {
		for _, c := range allowed.cpus() {
			if !slices.Contains(cores, c) {
				free = c
				break
			}
		}
	}
	if free < 0 {
		free = cores[0]
	}
	main := 0
	for slices.Contains(cores, main) {
		main++
	}
	m := []string{fmt.Sprintf("%d@%d", main, free)}
	for _, c := range cores {
		m = append(m, fmt.Sprintf("%d@%d", c, c))
	}
	return []string{"--lcores", strings.Join(m, ","), "--main-lcore", strconv.Itoa(main)}
}

// checkCores tells, before the EAL starts, which pipeline lcore would land
// on a CPU this process may not use when ferryd maps lcores itself.
func checkCores(cores []int) error {
	allowed, err := getAffinity(0)
	if err != nil {
		return nil // the EAL will say
	}
	for i, c := range cores {
		if !allowed.has(c) {
			return fmt.Errorf("cores[%d]: lcore %d runs on CPU %d without -l or --lcores in eal, and this process may use CPUs %v only; map lcores onto CPUs with --lcores (e.g. \"--lcores\", \"0@0,1@1,2@1\")", i, c, c, allowed.cpus())
		}
	}
	return nil
}

// startEAL checks the pipeline cores, completes the EAL arguments and
// starts the EAL; it returns what cleans it up and the pipelines' CPUs.
func startEAL(cfg *conf.Config, file string, log *zap.Logger) (cleanup func(), pipeCPUs []int, err error) {
	if !hasArg(cfg.EAL, "-l", "-c", "--lcores") {
		if err := checkCores(cfg.Cores); err != nil {
			return nil, nil, &refusedError{fmt.Errorf("%s: %w", file, err)}
		}
	}
	args, prefix, err := ealArgs(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	log.Info("starting EAL", zap.Strings("args", args))
	if err := dpdk.Init(args); err != nil {
		return nil, nil, err
	}
	cleanup = func() {
		dpdk.Cleanup()
		// The EAL leaves its runtime directory behind; nothing reads it
		// once the primary is gone.
		_ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
	}
	if pipeCPUs, err = pipelineCPUs(cfg.Cores, log); err != nil {
		cleanup()
		return nil, nil, &refusedError{fmt.Errorf("%s: %w", file, err)}
	}
	return cleanup, pipeCPUs, nil
}
