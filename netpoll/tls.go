package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
)

// TLS is the standard-library transport over TLS: crypto/tls on net.Dial
// and net.Listen, one read goroutine per connection, as Std. gnet's event
// loops read plain sockets only, so encrypted connections run here; see
// BENCHMARKS.md for what that costs.
//
// Config is required. A dialling Config needs ServerName (or
// InsecureSkipVerify, for tests only) unless the address names the host;
// a listening one needs Certificates (or GetCertificate). For mutual TLS
// set ClientAuth and ClientCAs on the listening side and Certificates on
// the dialling side. The handshake runs inside Dial (bounded by its ctx)
// and, on an accepted connection, on its reading goroutine before the
// first frame; a failed handshake ends that connection only.
type TLS struct {
	Config *tls.Config
	// Options apply to every connection it makes.
	Options Options
	// Dialer, if set, dials the underlying connection (timeouts,
	// keepalive, a local address); nil means a zero net.Dialer.
	Dialer *net.Dialer
}

// errNoTLSConfig is returned by a TLS transport without a Config.
var errNoTLSConfig = errors.New("netpoll: TLS transport without a Config")

// Dial connects to addr, completes the TLS handshake within ctx and
// starts the connection with h as its handler.
func (t TLS) Dial(ctx context.Context, network, addr string, h Handler) (*Conn, error) {
	if t.Config == nil {
		return nil, errNoTLSConfig
	}
	d := tls.Dialer{NetDialer: t.Dialer, Config: t.Config}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return NewConn(nc, h, t.Options), nil
}

// Listen listens on addr and serves TLS connections, as Accept does.
func (t TLS) Listen(network, addr string, accept AcceptFunc) (Listener, error) {
	if t.Config == nil {
		return nil, errNoTLSConfig
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return Accept(tls.NewListener(ln, t.Config), t.Options, accept), nil
}
