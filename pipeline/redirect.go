package pipeline

import "ferry/cache"

// redirectPeers is the per-core, fixed-size state of ip_rt_send_redirect's
// per-host backoff. Hosts that hash alike share a slot: a flood of sources
// cannot grow it, and the worst a collision does is reset a host's backoff.
const redirectPeers = 1024

type redirectPeer struct {
	src  uint32
	n    int   // redirects sent since the last silence
	last int64 // when the last one was sent or suppressed
}

type redirectLimiter struct {
	peers [redirectPeers]redirectPeer
}

// allow applies the kernel's backoff: after redirect_silence of quiet the
// count resets; at most redirect_number are sent, each at least
// redirect_load << n after the previous one.
func (l *redirectLimiter) allow(src uint32, now int64, k *Knobs) bool {
	h := (src * 0x9e3779b1) >> 22 // top 10 bits
	pe := &l.peers[h%redirectPeers]
	if pe.src != src {
		*pe = redirectPeer{src: src}
	}
	if pe.last != 0 && now-pe.last > int64(k.RedirectSilence) {
		pe.n = 0
	}
	if pe.n >= k.RedirectNumber {
		pe.last = now
		return false
	}
	if pe.n == 0 || now-pe.last > int64(k.RedirectLoad)<<uint(pe.n) {
		pe.last = now
		pe.n++
		return true
	}
	return false
}

// maybeRedirect sends an ICMP host redirect when a packet leaves by the port
// it came in on toward a next hop the sender could reach directly: the
// sender is on-link there and send_redirects is on (RTCF_DOREDIRECT).
func (p *Pipeline) maybeRedirect(buf []byte, l int, d *cache.Decision, inPort int) {
	if int(d.Port) != inPort || inPort >= len(p.ports) {
		return
	}
	pi := &p.ports[inPort]
	ip := buf[EthHdrLen:l]
	src := be.Uint32(ip[ipSrc:])
	dst := be.Uint32(ip[ipDst:])
	nh := d.NextHop(dst)
	if !pi.SendRedirects || !pi.onlink(src) || !pi.onlink(nh) || int(ip[ipVerIHL]&0xf) > 5 {
		return // source-routed packets (options) are not redirected either
	}
	if !p.redirects.allow(src, p.now, p.knobs) {
		return
	}
	if p.icmpErrorCopy(buf, l, ICMPRedirect, CodeRedirectHost, nh) {
		p.ctr.local[RedirectsSent]++
	}
}
