package conf

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/pipeline"
)

// metricsCollector turns ferryd's counters into Prometheus metrics at
// scrape time. It reads only what the pipelines publish for readers (the
// per-core published counters, the shim's atomics), never their working
// copies.
type metricsCollector struct {
	r *Router

	packets, drops, port, queue, kernel, neighs, routes, fibBytes, walks, used, genid, cpRoutes, huge *prometheus.Desc
}

func newMetricsCollector(r *Router) *metricsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ferry_"+name, help, labels, nil)
	}
	return &metricsCollector{r: r,
		packets:  d("pipeline_packets_total", "Packets by what happened to them, by pipeline core (ferryctl stats -per-core).", "core", "counter"),
		drops:    d("pipeline_drops_total", "Packets dropped, by reason and pipeline core.", "core", "reason"),
		port:     d("port_packets_total", "Packets a port's device received or sent (PMD counters).", "port", "direction"),
		queue:    d("queue_packets_total", "Packets of one queue of a port, as its pipeline counted them.", "port", "queue", "direction"),
		kernel:   d("kernel_path_frames_total", "Frames between a port and its kernel interface, by what happened.", "port", "what"),
		neighs:   d("neighbours", "Neighbour entries by state.", "state"),
		routes:   d("fib_routes", "Routes by table.", "table"),
		fibBytes: d("fib_lookup_bytes", "Memory of the data plane's lookup structure."),
		walks:    d("fib_slow_walks_total", "Input lookups that took the exact walk over the tries because their block's build waited."),
		used:     d("fib_used_blocks", "/16 blocks the pipelines' lookups went to lately: route changes there are built at once."),
		genid:    d("genid_bumps_total", "Generation id bumps: changes that expired cached routing decisions."),
		cpRoutes: d("mirror_routes", "Routes the control plane's mirror put in the FIB."),
		huge:     d("hugepage_bytes", "Hugepage memory the data plane maps."),
	}
}

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.packets, m.drops, m.port, m.queue, m.kernel, m.neighs, m.routes, m.fibBytes, m.walks, m.used, m.genid, m.cpRoutes, m.huge} {
		ch <- d
	}
}

func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	r := m.r
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for core, c := range r.Dataplane.CoreCounters() {
		cs := strconv.Itoa(core)
		for i := 0; i < pipeline.NumCounters; i++ {
			ctr := pipeline.Counter(i)
			if ctr.IsDrop() {
				counter(m.drops, c[i], cs, ctr.Name())
			} else {
				counter(m.packets, c[i], cs, ctr.Name())
			}
		}
	}
	if r.Links != nil {
		for _, l := range r.Links.Links() {
			counter(m.port, l.RxPackets, l.Name, "rx")
			counter(m.port, l.TxPackets, l.Name, "tx")
			for _, q := range l.Queues {
				counter(m.queue, q.RxPackets, l.Name, strconv.Itoa(q.Queue), "rx")
				counter(m.queue, q.TxPackets, l.Name, strconv.Itoa(q.Queue), "tx")
			}
		}
	}
	for port, k := range r.Dataplane.KernelPathStats() {
		name := r.FIB.PortName(port)
		counter(m.kernel, k.Punted.Frames, name, "punted")
		counter(m.kernel, k.Punted.Full, name, "punt_dropped_queue_full")
		counter(m.kernel, k.Punted.Limited, name, "punt_dropped_rate")
		counter(m.kernel, k.Injected.Frames, name, "injected")
		counter(m.kernel, k.Injected.Full+k.Injected.TooLong, name, "inject_dropped")
	}
	states := map[string]int{}
	for _, e := range r.Neigh.Entries(-1) {
		states[e.State.String()]++
	}
	for _, st := range []neigh.State{neigh.Incomplete, neigh.Reachable, neigh.Stale, neigh.Delay, neigh.Probe, neigh.Failed, neigh.NoARP, neigh.Permanent} {
		gauge(m.neighs, float64(states[st.String()]), st.String())
	}
	for _, t := range r.FIB.Tables() {
		gauge(m.routes, float64(r.FIB.Count(t)), fib.TableName(t))
	}
	gauge(m.fibBytes, float64(r.FIB.LookupBytes()))
	counter(m.walks, r.FIB.SlowWalks())
	gauge(m.used, float64(r.FIB.UsedBlocks()))
	counter(m.genid, r.Gen.Bumps())
	gauge(m.huge, float64(hugepageBytes()))
	if r.CP != nil {
		gauge(m.cpRoutes, float64(r.CP.Status().Routes))
	}
}

// ServeMetrics serves the Prometheus endpoint at addr (/metrics) until ctx
// ends: ferry's metrics, and the Go runtime's and the process's.
func ServeMetrics(ctx context.Context, addr string, r *Router, log *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetricsCollector(r), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", zap.Error(err))
		}
	}()
	log.Info("metrics endpoint", zap.String("address", ln.Addr().String()))
	return nil
}
