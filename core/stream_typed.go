package core

import (
	"context"
	"sync"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// Tx is a typed sending end: items are encoded with a Codec (SonicCodec
// by default). It binds to a call like a RawTx.
type Tx[T any] struct {
	raw   *RawTx
	codec Codec
	mu    sync.Mutex // guards buf
	buf   []byte
}

// Rx is a typed receiving end.
type Rx[T any] struct {
	raw   *RawRx
	codec Codec
}

// NewTx makes a typed channel this peer sends on (see Conn.NewTx).
func NewTx[T any](c *Conn, window int) *Tx[T] { return TxOf[T](c.NewTx(window), nil) }

// NewRx makes a typed channel this peer receives on (see Conn.NewRx).
func NewRx[T any](c *Conn, window int) *Rx[T] { return RxOf[T](c.NewRx(window), nil) }

// TxOf wraps a raw sending end (for instance from Request.Tx); a nil codec
// means SonicCodec.
func TxOf[T any](raw *RawTx, codec Codec) *Tx[T] {
	if codec == nil {
		codec = SonicCodec{}
	}
	return &Tx[T]{raw: raw, codec: codec}
}

// RxOf wraps a raw receiving end; a nil codec means SonicCodec.
func RxOf[T any](raw *RawRx, codec Codec) *Rx[T] {
	if codec == nil {
		codec = SonicCodec{}
	}
	return &Rx[T]{raw: raw, codec: codec}
}

func (t *Tx[T]) binding() wire.ChannelBinding { return t.raw.binding() }
func (t *Tx[T]) state() *chanState            { return t.raw.st }
func (r *Rx[T]) binding() wire.ChannelBinding { return r.raw.binding() }
func (r *Rx[T]) state() *chanState            { return r.raw.st }

// Raw returns the underlying raw end.
func (t *Tx[T]) Raw() *RawTx { return t.raw }

// Raw returns the underlying raw end.
func (r *Rx[T]) Raw() *RawRx { return r.raw }

// Window returns the channel's window now (see RawRx.Window).
func (r *Rx[T]) Window() int { return r.raw.Window() }

// Send encodes v and sends it (see RawTx.Send).
func (t *Tx[T]) Send(ctx context.Context, v T) error {
	t.mu.Lock()
	b, err := t.codec.AppendMarshal(t.buf[:0], &v)
	t.buf = b
	if err == nil {
		err = t.raw.Send(ctx, b)
	}
	t.mu.Unlock()
	return err
}

// Done is closed once the receiver has reset the channel or the
// connection has ended (see RawTx.Done).
func (t *Tx[T]) Done() <-chan struct{} { return t.raw.Done() }

// Close ends the channel (see RawTx.Close).
func (t *Tx[T]) Close() error { return t.raw.Close() }

// Recv receives and decodes the next item (see RawRx.Recv); an item that
// does not decode is returned as an *InvalidPayloadError.
func (r *Rx[T]) Recv(ctx context.Context) (T, error) {
	var v T
	it, err := r.raw.Recv(ctx)
	if err != nil {
		return v, err
	}
	err = r.codec.Unmarshal(it.Payload, &v)
	it.Release()
	if err != nil {
		return v, &InvalidPayloadError{Err: err}
	}
	return v, nil
}

// Reset asks the sender to stop (see RawRx.Reset).
func (r *Rx[T]) Reset() error { return r.raw.Reset() }

// Close is Reset for a receiver that is done.
func (r *Rx[T]) Close() error { return r.raw.Close() }
