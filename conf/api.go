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
	Batch [][]string `json:"batch,omitempty"`
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
}

// Handler executes a command.
type Handler interface {
	Exec(args []string, asJSON bool) (text string, data any, err error)
}

// Server serves the control API on a unix socket, one JSON request and one
// JSON response per line.
type Server struct {
	Path    string
	Handler Handler
	Log     *zap.Logger
	ln      net.Listener
	wg      sync.WaitGroup
	connMu  sync.Mutex
	conns   map[net.Conn]struct{}
	mu      sync.Mutex // one command at a time: the FIB has a single writer
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
	_ = os.Chmod(s.Path, 0o660)
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

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	enc := json.NewEncoder(c)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return
		}
		var req Request
		var resp Response
		if jerr := json.Unmarshal(line, &req); jerr != nil {
			resp.Error = "bad request: " + jerr.Error()
		} else {
			resp = s.exec(req)
		}
		if enc.Encode(&resp) != nil {
			return
		}
	}
}

func (s *Server) exec(req Request) (resp Response) {
	defer func() {
		if r := recover(); r != nil {
			s.Log.Error("control command panicked", zap.Strings("args", req.Args), zap.Any("panic", r))
			resp = Response{Error: fmt.Sprintf("internal error running %q", req.Args)}
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
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

// Do sends one request and waits for its response.
func (cl *Client) Do(req Request) (Response, error) {
	var resp Response
	if err := cl.enc.Encode(&req); err != nil {
		return resp, fmt.Errorf("send to ferryd: %w", err)
	}
	line, err := cl.r.ReadBytes('\n')
	if err != nil {
		return resp, fmt.Errorf("read from ferryd: %w", err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("bad reply from ferryd: %w", err)
	}
	return resp, nil
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
