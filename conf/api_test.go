package conf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"ferry/fib"
)

// TestRouteShowStreams checks that a table larger than one part goes out
// in parts, and that the parts, joined, are the whole answer in order:
// the text as the one-piece command gives it, the JSON records one each.
func TestRouteShowStreams(t *testing.T) {
	r := testRouter(t)
	const n = 3*routeShowPart + 100
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.FIB.Batch(func(b *fib.Batch) error {
		for i := 0; i < n; i++ {
			rt, err := fib.ParseRoute(strings.Fields(fmt.Sprintf("10.%d.%d.0/24 via 192.0.2.9 proto bgp", i>>8, i&255)), r.FIB)
			if err != nil {
				return err
			}
			if err := b.Add(rt); err != nil {
				return err
			}
		}
		return nil
	}))
	sock := filepath.Join(t.TempDir(), "ferry.sock")
	srv := &Server{Path: sock, Handler: r, Log: zap.NewNop()}
	must(srv.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	cl, err := Dial(sock)
	must(err)
	defer cl.Close()

	whole, _, err := r.Exec([]string{"route", "show"}, false)
	must(err)
	parts := 0
	var streamed strings.Builder
	last, err := cl.Stream(Request{Args: []string{"route", "show"}}, func(p *Response) error {
		parts++
		streamed.WriteString(p.Output)
		return nil
	})
	must(err)
	if !last.OK || parts < 4 {
		t.Fatalf("route show: %d parts, last %+v", parts, last)
	}
	if got := streamed.String() + last.Output; got != whole {
		t.Fatalf("streamed route show differs from the whole answer (%d against %d bytes)", len(got), len(whole))
	}
	if c := strings.Count(whole, "\n"); c < n {
		t.Fatalf("route show: %d lines for %d routes", c, n)
	}

	resp, err := cl.Do(Request{Args: []string{"route", "show", "proto", "bgp"}, JSON: true})
	must(err)
	var recs []map[string]any
	must(json.Unmarshal(resp.Data, &recs))
	if len(recs) != n || recs[0]["dst"] != "10.0.0.0/24" || recs[n-1]["dst"] != fmt.Sprintf("10.%d.%d.0/24", (n-1)>>8, (n-1)&255) {
		t.Fatalf("route show -json: %d records (want %d), first %v", len(recs), n, recs[0])
	}

	// A bad argument is an error, not a stream; the connection stays usable.
	if resp, err := cl.Do(Request{Args: []string{"route", "show", "bogus"}}); err != nil || resp.OK || !strings.Contains(resp.Error, "bogus") {
		t.Fatalf("route show bogus: %+v %v", resp, err)
	}
	if resp, err := cl.Do(Request{Args: []string{"route", "get", "10.0.1.1"}}); err != nil || !strings.Contains(resp.Output, "via 192.0.2.9") {
		t.Fatalf("route get after a stream: %+v %v", resp, err)
	}
}

// TestRouteShowTableAll checks where the table goes on a line of 'route
// show table all': after the device, as iproute2 prints it.
func TestRouteShowTableAll(t *testing.T) {
	r := testRouter(t)
	exec(t, r, "route add 10.9.0.0/16 via 192.0.2.9 table 100 proto static metric 7")
	out := exec(t, r, "route show table all")
	if !strings.Contains(out, "10.9.0.0/16 via 192.0.2.9 dev port0 table 100 proto static metric 7\n") {
		t.Fatalf("route show table all:\n%s", out)
	}
}

// failingStreamer streams one part, then fails ("fail") or panics
// ("panic").
type failingStreamer struct{ Handler }

func (failingStreamer) Stream(args []string, _ bool) (Producer, error) {
	return func(emit func(string, []any) error) error {
		if err := emit("first\n", nil); err != nil {
			return err
		}
		if args[0] == "panic" {
			panic("producer bug")
		}
		return errors.New("disk on fire")
	}, nil
}

// A streamed answer cut short by an error or a panic ends with that error,
// after the parts already sent, and the connection serves the next request.
func TestStreamFailureEndsTheAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ferry.sock")
	srv := &Server{Path: sock, Handler: failingStreamer{}, Log: zap.NewNop()}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	cl, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, c := range []struct{ cmd, want string }{{"fail", "disk on fire"}, {"panic", "internal error"}, {"fail", "disk on fire"}} {
		var got strings.Builder
		last, err := cl.Stream(Request{Args: []string{c.cmd}}, func(p *Response) error { got.WriteString(p.Output); return nil })
		if err != nil || last.OK || !strings.Contains(last.Error, c.want) || got.String() != "first\n" {
			t.Fatalf("%s: parts %q, last %+v, %v", c.cmd, got.String(), last, err)
		}
	}
}
