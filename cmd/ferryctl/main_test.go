package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzAppendCommand holds -batch's own encoding of a line to what
// encoding/json makes of the line's words.
func FuzzAppendCommand(f *testing.F) {
	for _, s := range []string{"route add 10.0.0.0/8 via 192.0.2.2", " a\t b ", `x "y" \z`, "caf\u00e9 \x01", "\xff\xfe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var got, want []string
		b := appendCommand(nil, []byte(line))
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", line, b, err)
		}
		wb, _ := json.Marshal(strings.Fields(line))
		if err := json.Unmarshal(wb, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 || len(want) != 0 {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: %q, want %q", line, got, want)
			}
		}
	})
}

func TestReadChunks(t *testing.T) {
	var in strings.Builder
	n := batchChunkLen + 3
	for i := 0; i < n; i++ {
		in.WriteString("route add 10.0.0.0/8 dev port0\n\n# a comment\n")
	}
	out := make(chan batchChunk, 4)
	readChunks(strings.NewReader(in.String()), out, nil, make(chan struct{}))
	var sizes, firstLines []int
	for c := range out {
		if c.err != nil {
			t.Fatal(c.err)
		}
		var req struct{ Batch [][]string }
		if err := json.Unmarshal(c.req, &req); err != nil {
			t.Fatalf("%.200s: %v", c.req, err)
		}
		if len(req.Batch) != len(c.lines) || strings.Join(req.Batch[0], " ") != "route add 10.0.0.0/8 dev port0" {
			t.Fatalf("%d commands for %d lines: %q", len(req.Batch), len(c.lines), req.Batch[0])
		}
		sizes = append(sizes, len(c.lines))
		firstLines = append(firstLines, c.lines[0])
	}
	if !reflect.DeepEqual(sizes, []int{batchChunkLen, 3}) || !reflect.DeepEqual(firstLines, []int{1, 3*batchChunkLen + 1}) {
		t.Errorf("chunks of %v commands from lines %v", sizes, firstLines)
	}
}
