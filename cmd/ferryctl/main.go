// ferryctl is the command-line client of ferryd's control socket. Its
// commands follow ip(8): route, rule, neigh, link, plus stats and cache.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"ferry/cmd/internal/cli"
	"ferry/conf"
)

const usage = `Usage: ferryctl [--socket PATH] [-json] COMMAND [ARGS]
       ferryctl [--socket PATH] -batch FILE

Commands:
  route show [table T|all]            list routes as 'ip route show'
  route show cache                    list live nexthop exceptions
  route add|del|replace|change|append|prepend ROUTE
                                      ROUTE in 'ip route' syntax
  route get ADDR [from S] [iif P] [oif P] [tos T] [mark M] [ipproto P] [sport N] [dport N]
  route flush table T | route flush cache
  rule show | rule add|del RULE       policy rules in 'ip rule' syntax
  neigh show [dev P]                  neighbours as 'ip neigh show'
  neigh add|del|replace|change ADDR lladdr MAC dev P [nud STATE]
  neigh flush dev P
  neigh stats                         neighbour table counters (as /proc/net/stat/arp_cache)
  link show [-s]                      ports, MAC, state, driver, offloads, counters (-s: each queue's)
  stats [-per-core]                   packet counters and drops by reason (-per-core: each pipeline's)
  cache stats                         routing decision cache counters
  cp status | cp mirror on|off        the control plane's netlink mirror
  debug gc | debug heap FILE          collect garbage now; write a heap profile
  reload                              re-read the configuration file and apply it (as SIGHUP)
  save [FILE]                         the running routes, rules, neighbours and knobs as a config
  knob show | knob set [dev P] NAME VALUE
                                      run-time settings with the kernel's names

Options:
`

var commandHelp = map[string]string{
	"route": `ferryctl route show [table T|all]
ferryctl route show cache
ferryctl route {add|del|replace|change|append|prepend} [TYPE] PREFIX [via ADDR] [dev PORT]
        [src ADDR] [metric N] [tos T] [scope S] [proto P] [onlink] [mtu [lock] N] [table T]
        [nexthop via ADDR [dev PORT] [weight W] ...]
    TYPE := unicast | local | broadcast | blackhole | unreachable | prohibit | throw
ferryctl route get ADDR [from ADDR] [iif PORT] [oif PORT] [tos T] [mark M] [ipproto P] [sport N] [dport N]
ferryctl route flush {table T | cache}`,
	"rule": `ferryctl rule show
ferryctl rule {add|del} [not] [from PREFIX] [to PREFIX] [iif PORT] [tos T] [fwmark M[/MASK]]
        [priority N] {lookup TABLE | blackhole | unreachable | prohibit}`,
	"neigh": `ferryctl neigh show [dev PORT]
ferryctl neigh {add|del|replace|change} ADDR [lladdr MAC] dev PORT [nud {permanent|noarp|reachable|stale}]
ferryctl neigh flush dev PORT
ferryctl neigh stats`,
	"link": `ferryctl link show [-s]     ports with MAC, link state, MTU, driver, receive offloads and
                            rx/tx/drop counters;
                            -s adds each queue's packets and the pipeline (lcore) that polls it`,
	"stats": `ferryctl stats [-per-core]  packet counters, drops by reason (summed over cores);
                            -per-core shows each pipeline's side by side`,
	"cache": `ferryctl cache stats   routing decision cache counters (as /proc/net/stat/rt_cache)`,
	"knob": `ferryctl knob show
ferryctl knob set NAME VALUE            forward_use_pmtu, min_pmtu, mtu_expires, redirect_number,
                                        redirect_silence, icmp_msgs_per_sec, icmp_msgs_burst,
                                        fib_multipath_hash_policy
ferryctl knob set dev PORT NAME VALUE   mtu, accept_redirects, secure_redirects, send_redirects,
                                        neigh.<name> (base_reachable_time_ms, gc_thresh3, ...)`,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferryctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", conf.DefaultAPI, "control socket of ferryd")
	asJSON := fs.Bool("json", false, "machine-readable output")
	batch := fs.String("batch", "", "read commands from FILE, one a line ('-' for stdin)")
	version := fs.Bool("version", false, "print the version and exit")
	oneline := fs.Bool("o", false, "one line a record: a multipath route's nexthops on its line (valid -batch input)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, cli.VersionLine("ferryctl"))
		return 0
	}
	args := fs.Args()
	if *batch == "" && len(args) == 0 {
		fs.Usage()
		return 2
	}
	if len(args) > 0 {
		if h, ok := wantsHelp(args); ok {
			fmt.Fprintln(stdout, h)
			return 0
		}
	}
	cl, err := conf.Dial(*socket)
	if err != nil {
		fmt.Fprintln(stderr, "ferryctl:", err)
		return 1
	}
	defer cl.Close()
	if *batch != "" {
		return runBatch(cl, *batch, stdout, stderr)
	}
	if args[0] == "save" && len(args) == 2 {
		// The daemon renders; the file is written here, by the caller.
		var buf bytes.Buffer
		if err := do(cl, args[:1], false, &buf); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := os.WriteFile(args[1], buf.Bytes(), 0o640); err != nil {
			fmt.Fprintln(stderr, "ferryctl: save:", err)
			return 1
		}
		return 0
	}
	out := stdout
	var buf bytes.Buffer
	if *oneline && !*asJSON {
		out = &buf
	}
	if err := do(cl, args, *asJSON, out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if out == &buf {
		io.WriteString(stdout, strings.ReplaceAll(buf.String(), "\n\t", " "))
	}
	return 0
}

// wantsHelp answers "--help", "-h" and "help" anywhere in a command.
func wantsHelp(args []string) (string, bool) {
	for _, a := range args {
		if a == "--help" || a == "-h" || a == "help" || a == "-help" {
			if h, ok := commandHelp[args[0]]; ok {
				return h, true
			}
			return strings.TrimSpace(usage), true
		}
	}
	return "", false
}

func do(cl *conf.Client, args []string, asJSON bool, stdout io.Writer) error {
	req := conf.Request{Args: args, JSON: asJSON}
	var resp conf.Response
	var err error
	if asJSON {
		resp, err = cl.Do(req)
	} else {
		// Text goes out as it comes: a full table's routes need not fit
		// in memory here either.
		resp, err = cl.Stream(req, func(part *conf.Response) error {
			_, werr := io.WriteString(stdout, part.Output)
			return werr
		})
	}
	if err != nil {
		return fmt.Errorf("ferryctl: %w", err)
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	if asJSON && len(resp.Data) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, resp.Data, "", "  ") == nil {
			buf.WriteByte('\n')
			_, err = stdout.Write(buf.Bytes())
			return err
		}
	}
	if resp.Output != "" {
		out := resp.Output
		if !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		_, err = io.WriteString(stdout, out)
	}
	return err
}

// runBatch runs one command a line as 'ip -batch' does: blank lines and
// '#' comments are skipped; the first failure stops it, naming the line.
// Commands go to ferryd in chunks, so large route files load quickly; the
// next chunk is read and encoded while ferryd runs the one before.
func runBatch(cl *conf.Client, path string, stdout, stderr io.Writer) int {
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(stderr, "ferryctl:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	chunks := make(chan batchChunk, 1)
	// Sent requests come back for the reader to fill again: a full
	// table's requests would otherwise be 100 MB of garbage.
	reuse := make(chan batchChunk, 2)
	stop := make(chan struct{})
	defer close(stop)
	go readChunks(in, chunks, reuse, stop)
	for c := range chunks {
		if c.err != nil {
			w.Flush()
			fmt.Fprintln(stderr, "ferryctl:", c.err)
			return 1
		}
		resp, err := cl.DoEncoded(c.req)
		io.WriteString(w, resp.Output)
		if err != nil {
			w.Flush()
			fmt.Fprintln(stderr, "ferryctl:", err)
			return 1
		}
		if !resp.OK {
			w.Flush()
			line := 0
			if resp.Failed >= 0 && resp.Failed < len(c.lines) {
				line = c.lines[resp.Failed]
			}
			fmt.Fprintf(stderr, "Command failed %s:%d\n%s\n", path, line, resp.Error)
			return 1
		}
		select {
		case reuse <- c:
		default:
		}
	}
	return 0
}

// batchChunk is one request of a batch: its commands encoded, and the
// line of the file each came from; or why reading stopped.
type batchChunk struct {
	req   []byte
	lines []int
	err   error
}

// readChunks reads commands from in, batchChunkLen to a request, and hands
// out each request encoded, until in ends, reading fails or stop closes;
// it fills the chunks that come back on reuse (nil: none do) again.
// It encodes the words itself: through strings.Fields and json.Marshal, a
// full table's words cost more than ferryd's decoding of them.
func readChunks(in io.Reader, out chan<- batchChunk, reuse <-chan batchChunk, stop <-chan struct{}) {
	defer close(out)
	send := func(c batchChunk) bool {
		select {
		case out <- c:
			return true
		case <-stop:
			return false
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var req []byte
	var lines []int
	flush := func() bool {
		if len(lines) == 0 {
			return true
		}
		ok := send(batchChunk{req: append(req, "]}\n"...), lines: lines})
		req, lines = nil, nil // sent: the reader's now
		return ok
	}
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		if len(lines) == 0 {
			select {
			case c := <-reuse:
				req, lines = c.req[:0], c.lines[:0]
			default:
				req = make([]byte, 0, 128<<10)
			}
			req = append(req, `{"batch":[`...)
		} else {
			req = append(req, ',')
		}
		req = appendCommand(req, text)
		lines = append(lines, line)
		if len(lines) == batchChunkLen && !flush() {
			return
		}
	}
	if err := sc.Err(); err != nil {
		send(batchChunk{err: err})
		return
	}
	flush()
}

// appendCommand appends the words of line (split at white space, as
// strings.Fields does) as a JSON array of strings.
func appendCommand(b, line []byte) []byte {
	for _, c := range line {
		if c >= utf8.RuneSelf {
			return appendWords(b, bytes.Fields(line))
		}
	}
	b = append(b, '[')
	first := true
	for i := 0; i < len(line); {
		for i < len(line) && asciiSpace[line[i]] {
			i++
		}
		j := i
		for j < len(line) && !asciiSpace[line[j]] {
			j++
		}
		if j > i {
			if !first {
				b = append(b, ',')
			}
			b, first = appendJSONString(b, line[i:j]), false
		}
		i = j
	}
	return append(b, ']')
}

// asciiSpace is what strings.Fields splits ASCII text at.
var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// appendWords appends words as a JSON array of strings.
func appendWords(b []byte, words [][]byte) []byte {
	b = append(b, '[')
	for i, w := range words {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, w)
	}
	return append(b, ']')
}

// appendJSONString appends w as a JSON string: as it is when it is
// printable ASCII without quote or backslash (a route's words), else
// through encoding/json.
func appendJSONString(b, w []byte) []byte {
	for _, c := range w {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(string(w))
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, w...)
	return append(b, '"')
}

const batchChunkLen = 2048
