package conf

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Request is one control command: the words ferryctl was given.
type Request struct {
	Args []string `json:"args,omitempty"`
	JSON bool     `json:"json,omitempty"`
	// Batch carries many commands in one round trip (ferryctl -batch); they
	// run in order and stop at the first failure.
	Batch Commands `json:"batch,omitempty"`
}

// Response carries the command's text (as ip(8) would print it), or its data
// when JSON was asked for, or an error.
type Response struct {
	OK     bool            `json:"ok"`
	Output string          `json:"output,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	Error  string          `json:"error,omitempty"`
	// Failed is the index of the batch command that failed.
	Failed int `json:"failed,omitempty"`
	// More says another part of the answer follows: a long answer (the
	// routes of a full table) goes out in parts as it is made, each with
	// its lines and, for JSON, an array of its records.
	More bool `json:"more,omitempty"`
}

// Handler executes a command.
type Handler interface {
	Exec(args []string, asJSON bool) (text string, data any, err error)
}

// Streamer is a Handler whose long answers go out in parts.
type Streamer interface {
	// Stream returns the producer of the command's answer when the command
	// streams, nil when it does not. It runs under the command lock; the
	// producer runs after it, so it must read only published state, and
	// hands each part to emit (records: JSON's, when asked for).
	Stream(args []string, asJSON bool) (Producer, error)
}

// Producer makes a streamed answer, part by part. The text and records
// emit is given are the producer's to reuse once emit returns: emit sends
// or copies them, never keeps them.
type Producer func(emit func(text string, records []any) error) error

// Server serves the control API on a unix socket, one JSON request and one
// JSON response per line.
type Server struct {
	Path    string
	Handler Handler
	Log     *zap.Logger
	// Access decides what each peer may do; nil: root alone, as the
	// socket's mode says.
	Access *AccessPolicy
	ln     net.Listener
	wg     sync.WaitGroup
	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	mu     sync.Mutex // one command at a time: the FIB has a single writer
}

// Listen opens the socket, replacing a stale one left by a killed daemon.
func (s *Server) Listen() error {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return fmt.Errorf("control socket %s: %w", s.Path, err)
	}
	if c, err := net.DialTimeout("unix", s.Path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another ferryd is listening", s.Path)
	}
	_ = os.Remove(s.Path)
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", s.Path, err)
	}
	mode, gid := os.FileMode(0o660), -1
	if s.Access != nil {
		mode, gid = s.Access.SocketMode()
	}
	if gid >= 0 {
		if err := os.Chown(s.Path, 0, gid); err != nil {
			ln.Close()
			return fmt.Errorf("control socket %s: %w", s.Path, err)
		}
	}
	_ = os.Chmod(s.Path, mode)
	s.ln = ln
	return nil
}

// Serve accepts connections until ctx is done.
func (s *Server) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.Log.Warn("control socket accept failed", zap.Error(err))
			}
			break
		}
		s.track(c, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			s.serveConn(c)
		}()
	}
	// Close idle clients; a command still running gets a moment to finish
	// but never holds up shutdown.
	s.connMu.Lock()
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.connMu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		s.Log.Warn("control commands still running at shutdown")
	}
	_ = os.Remove(s.Path)
}

func (s *Server) track(c net.Conn, add bool) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

// MaxRequest is the longest request line: a client that sends more is
// answered with an error and cut off.
const MaxRequest = 1 << 20

// Clients get this long to send a request or read a reply; a stalled one
// holds only its own connection.
const (
	idleTimeout  = 10 * time.Minute
	writeTimeout = 30 * time.Second
)

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	access := AccessFull
	who := ""
	if s.Access != nil {
		access, who = s.Access.Of(c)
	}
	enc := json.NewEncoder(c)
	reply := func(resp *Response) bool {
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		return enc.Encode(resp) == nil
	}
	r := bufio.NewReaderSize(c, 64<<10)
	if access == AccessNone {
		// The answer to its first request: a client writing while the
		// connection closed under it would see a broken pipe, not why.
		c.SetReadDeadline(time.Now().Add(time.Second))
		readLine(r, MaxRequest)
		reply(&Response{Error: "permission denied: the control socket is root's" + s.groupsHint()})
		s.Log.Warn("control socket peer refused", zap.String("peer", who))
		return
	}
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := readLine(r, MaxRequest)
		if errors.Is(err, errTooLong) {
			reply(&Response{Error: fmt.Sprintf("request longer than %d bytes", MaxRequest)})
			return
		}
		if len(line) == 0 && err != nil {
			return
		}
		var req Request
		var resp Response
		if jerr := decodeRequest(line, &req); jerr != nil {
			resp.Error = "bad request: " + jerr.Error()
		} else if access == AccessReadOnly && !readOnlyRequest(req) {
			resp.Error = fmt.Sprintf("permission denied: read-only access (%s): %q changes the router", s.Access.ReadOnlyGroup, strings.Join(req.Args, " "))
		} else if prod, perr := s.stream(req); perr != nil {
			resp.Error = perr.Error()
		} else if prod != nil {
			var alive bool
			if resp, alive = s.runStream(req, prod, reply); !alive {
				return
			}
		} else {
			resp = s.exec(req)
		}
		if !reply(&resp) {
			return
		}
	}
}

// stream returns req's producer when its command streams.
func (s *Server) stream(req Request) (prod Producer, err error) {
	st, ok := s.Handler.(Streamer)
	if !ok || len(req.Batch) > 0 {
		return nil, nil
	}
	err = s.guarded(req.Args, func() (err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		prod, err = st.Stream(req.Args, req.JSON)
		return err
	})
	return prod, err
}

// runStream sends the producer's parts as they come, and returns the
// answer's last part: its end, or the error that cut it short. alive is
// false when the client went away.
func (s *Server) runStream(req Request, prod Producer, reply func(*Response) bool) (last Response, alive bool) {
	alive = true
	err := s.guarded(req.Args, func() error {
		return prod(s.emitter(req.JSON, reply, &alive))
	})
	if err != nil {
		return Response{Error: err.Error()}, alive
	}
	return Response{OK: true}, alive
}

// emitter sends each part of a streamed answer; it clears *alive and
// stops the producer when the client went away.
func (s *Server) emitter(asJSON bool, reply func(*Response) bool, alive *bool) func(string, []any) error {
	return func(text string, records []any) error {
		part := Response{OK: true, More: true, Output: text}
		if asJSON {
			if records == nil {
				records = []any{}
			}
			b, err := json.Marshal(records)
			if err != nil {
				return fmt.Errorf("encode reply: %w", err)
			}
			part.Data = b
		}
		if !reply(&part) {
			*alive = false
			return errClientGone
		}
		return nil
	}
}

// guarded runs fn, turning a panic into an error naming the command: a
// bad command must not take the daemon down.
func (s *Server) guarded(args []string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.Log.Error("control command panicked", zap.Strings("args", args), zap.Any("panic", r))
			err = fmt.Errorf("internal error running %q", args)
		}
	}()
	return fn()
}

var errClientGone = errors.New("client went away")

func (s *Server) groupsHint() string {
	if s.Access != nil && (s.Access.Group != "" || s.Access.ReadOnlyGroup != "") {
		return " and its groups' (api_group, api_readonly_group)"
	}
	return " (api_group in the configuration lets a group in)"
}

func readOnlyRequest(req Request) bool {
	if len(req.Batch) > 0 {
		for _, args := range req.Batch {
			if !ReadOnly(args) {
				return false
			}
		}
		return true
	}
	return ReadOnly(req.Args)
}

var errTooLong = errors.New("line too long")

// readLine reads up to a newline, refusing lines longer than max.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errTooLong
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

func (s *Server) exec(req Request) (resp Response) {
	if err := s.guarded(req.Args, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		resp = s.execLocked(req)
		return nil
	}); err != nil {
		return Response{Error: err.Error()}
	}
	return resp
}

// execLocked runs req under the command lock.
func (s *Server) execLocked(req Request) (resp Response) {
	if len(req.Batch) > 0 {
		return s.execBatch(req)
	}
	text, data, err := s.Handler.Exec(req.Args, req.JSON)
	if err != nil {
		return Response{Error: err.Error()}
	}
	resp = Response{OK: true, Output: text}
	if req.JSON && data != nil {
		b, jerr := json.Marshal(data)
		if jerr != nil {
			return Response{Error: "encode reply: " + jerr.Error()}
		}
		resp.Data = b
	}
	return resp
}

// Client talks to a Server.
type Client struct {
	c   net.Conn
	r   *bufio.Reader
	enc *json.Encoder
}

// Dial connects to the control socket.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot reach ferryd at %s: %w (is it running? --socket changes the path)", path, err)
	}
	return &Client{c: c, r: bufio.NewReaderSize(c, 1<<16), enc: json.NewEncoder(c)}, nil
}

// Do sends one request and waits for its whole response: a streamed one's
// parts joined (their text, and their records in one JSON array).
func (cl *Client) Do(req Request) (Response, error) {
	var text strings.Builder
	var records []json.RawMessage
	streamed := false
	last, err := cl.Stream(req, func(part *Response) error {
		streamed = true
		text.WriteString(part.Output)
		if len(part.Data) > 0 {
			var rs []json.RawMessage
			if err := json.Unmarshal(part.Data, &rs); err != nil {
				return fmt.Errorf("bad reply from ferryd: %w", err)
			}
			records = append(records, rs...)
		}
		return nil
	})
	if err != nil || !streamed {
		return last, err
	}
	text.WriteString(last.Output)
	last.Output = text.String()
	if req.JSON {
		if records == nil {
			records = []json.RawMessage{}
		}
		b, err := json.Marshal(records)
		if err != nil {
			return last, err
		}
		last.Data = b
	}
	return last, nil
}

// DoEncoded is Do for a request already encoded as JSON on one line (as
// json.Marshal gives it, or with its newline), so that a caller can
// encode the next request while ferryd runs this one. A streamed answer's
// text is joined; its records are not kept.
func (cl *Client) DoEncoded(req []byte) (Response, error) {
	if len(req) == 0 || req[len(req)-1] != '\n' {
		req = append(req, '\n')
	}
	if _, err := cl.c.Write(req); err != nil {
		return Response{}, fmt.Errorf("send to ferryd: %w", err)
	}
	var text strings.Builder
	last, err := cl.read(func(part *Response) error {
		text.WriteString(part.Output)
		return nil
	})
	if err == nil && text.Len() > 0 {
		last.Output = text.String() + last.Output
	}
	return last, err
}

// Stream sends one request and hands each part of a streamed response to
// part as it arrives; it returns the last part, which ends every answer
// (the whole of one that does not stream).
func (cl *Client) Stream(req Request, part func(*Response) error) (Response, error) {
	if err := cl.enc.Encode(&req); err != nil {
		return Response{}, fmt.Errorf("send to ferryd: %w", err)
	}
	return cl.read(part)
}

// read reads one answer: its parts, then the last.
func (cl *Client) read(part func(*Response) error) (Response, error) {
	for {
		var resp Response
		line, err := cl.r.ReadBytes('\n')
		if err != nil {
			return resp, fmt.Errorf("read from ferryd: %w", err)
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return resp, fmt.Errorf("bad reply from ferryd: %w", err)
		}
		if !resp.More {
			return resp, nil
		}
		if err := part(&resp); err != nil {
			return resp, err
		}
	}
}

// Close closes the connection.
func (cl *Client) Close() error { return cl.c.Close() }

// BatchHandler runs many commands at once (route changes in one FIB batch).
type BatchHandler interface {
	ExecBatch(cmds [][]string) (out string, failed int, err error)
}

func (s *Server) execBatch(req Request) Response {
	if bh, ok := s.Handler.(BatchHandler); ok {
		out, failed, err := bh.ExecBatch(req.Batch)
		if err != nil {
			return Response{Output: out, Error: err.Error(), Failed: failed}
		}
		return Response{OK: true, Output: out}
	}
	var out []byte
	for i, args := range req.Batch {
		text, _, err := s.Handler.Exec(args, false)
		if err != nil {
			return Response{Output: string(out), Error: err.Error(), Failed: i}
		}
		if text != "" {
			out = append(out, text...)
			if text[len(text)-1] != '\n' {
				out = append(out, '\n')
			}
		}
	}
	return Response{OK: true, Output: string(out)}
}
