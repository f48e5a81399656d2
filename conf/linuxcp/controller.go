package linuxcp

import (
	"context"
	"sync"

	"ferry/fib"
)

// Controller runs the mirror, which can be turned off and on while ferryd
// runs; turned on, it resyncs in full.
type Controller struct {
	Mirror *Mirror

	mu     sync.Mutex
	parent context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NewController runs m under ctx when on.
func NewController(ctx context.Context, m *Mirror, on bool) *Controller {
	c := &Controller{Mirror: m, parent: ctx}
	if on {
		c.SetMirror(true)
	}
	return c
}

// SetMirror starts or stops the mirror; what it mirrored stays in the FIB
// when it stops ('route flush proto' removes it).
func (c *Controller) SetMirror(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on == (c.cancel != nil) {
		return
	}
	if !on {
		c.cancel()
		<-c.done
		c.cancel, c.done = nil, nil
		return
	}
	ctx, cancel := context.WithCancel(c.parent)
	done := make(chan struct{})
	c.cancel, c.done = cancel, done
	go func() {
		defer close(done)
		c.Mirror.Run(ctx)
	}()
}

// Stop ends the mirror and waits for it.
func (c *Controller) Stop() { c.SetMirror(false) }

// Status is the mirror's.
func (c *Controller) Status() Status { return c.Mirror.Status() }

// OwnsRoute reports whether the mirror put r in the FIB.
func (c *Controller) OwnsRoute(r *fib.Route) bool { return c.Mirror.ownsRoute(r) }

// OwnsRule reports whether the mirror put the rule FormatRule printed as
// text in the FIB.
func (c *Controller) OwnsRule(text string) bool { return c.Mirror.ownsRule(text) }
