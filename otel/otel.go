// Package otelrove connects Rove to OpenTelemetry: RPC metrics from
// core.StatsHandler reports, and traces from interceptors that carry the
// trace context in call metadata. It is a module of its own, so that
// Rove's core module does not depend on OpenTelemetry.
//
// Names follow the OpenTelemetry semantic conventions for RPC:
// rpc.server.call.duration and rpc.client.call.duration (seconds),
// rpc.server.request.size, rpc.server.response.size and their client
// twins (bytes), with rpc.system = "rove", rpc.service, rpc.method and
// rpc.response.status_code (the canonical code's name, as gRPC's).
// Spans are named "service/method", of kind server or client.
//
//	opts := core.Options{
//		Stats:              otelrove.NewStats(meterProvider),
//		ServerInterceptors: []core.ServerInterceptor{otelrove.ServerTracing(tracerProvider, nil)},
//		CallInterceptors:   []core.CallInterceptor{otelrove.CallTracing(tracerProvider, nil)},
//	}
package otelrove

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/rove-rpc/rove/core"
)

const scope = "github.com/rove-rpc/rove/otel"

// Stats is a core.StatsHandler that records RPC metrics.
type Stats struct {
	serverDur, clientDur  metric.Float64Histogram
	serverReq, serverResp metric.Int64Histogram
	clientReq, clientResp metric.Int64Histogram
	sessions              metric.Int64UpDownCounter
}

// NewStats returns a StatsHandler recording to mp (nil: the global
// MeterProvider).
func NewStats(mp metric.MeterProvider) *Stats {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scope)
	s := &Stats{}
	// Errors only when a name or unit is invalid, which these are not;
	// the instruments are then no-ops rather than nil.
	s.serverDur, _ = m.Float64Histogram("rpc.server.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of calls served, until the handler returned."))
	s.clientDur, _ = m.Float64Histogram("rpc.client.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of calls made, until their outcome."))
	s.serverReq, _ = m.Int64Histogram("rpc.server.request.size", metric.WithUnit("By"))
	s.serverResp, _ = m.Int64Histogram("rpc.server.response.size", metric.WithUnit("By"))
	s.clientReq, _ = m.Int64Histogram("rpc.client.request.size", metric.WithUnit("By"))
	s.clientResp, _ = m.Int64Histogram("rpc.client.response.size", metric.WithUnit("By"))
	s.sessions, _ = m.Int64UpDownCounter("rove.sessions.active", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions open."))
	return s
}

func callAttrs(c core.CallStats) metric.MeasurementOption {
	return metric.WithAttributes(
		attribute.String("rpc.system", "rove"),
		attribute.String("rpc.service", c.Method.Service),
		attribute.String("rpc.method", c.Method.Name),
		attribute.String("rpc.response.status_code", c.Code.String()),
	)
}

// CallEnd implements core.StatsHandler.
func (s *Stats) CallEnd(c core.CallStats) {
	ctx := context.Background()
	attrs := callAttrs(c)
	if c.Served {
		s.serverDur.Record(ctx, c.Duration.Seconds(), attrs)
		s.serverReq.Record(ctx, int64(c.RequestBytes), attrs)
		s.serverResp.Record(ctx, int64(c.ResponseBytes), attrs)
		return
	}
	s.clientDur.Record(ctx, c.Duration.Seconds(), attrs)
	s.clientReq.Record(ctx, int64(c.RequestBytes), attrs)
	s.clientResp.Record(ctx, int64(c.ResponseBytes), attrs)
}

func sessionAttrs(i core.SessionInfo) metric.AddOption {
	side := "acceptor"
	if i.Initiator {
		side = "initiator"
	}
	return metric.WithAttributes(attribute.String("rpc.system", "rove"), attribute.String("rove.session.side", side))
}

// SessionStart implements core.StatsHandler.
func (s *Stats) SessionStart(i core.SessionInfo) {
	s.sessions.Add(context.Background(), 1, sessionAttrs(i))
}

// SessionEnd implements core.StatsHandler.
func (s *Stats) SessionEnd(i core.SessionInfo, _ error) {
	s.sessions.Add(context.Background(), -1, sessionAttrs(i))
}

// metadataCarrier reads propagation fields from request metadata.
type metadataCarrier struct{ md core.Metadata }

func (c metadataCarrier) Get(key string) string {
	v, _ := c.md.Get(key)
	return v.Str()
}

func (c metadataCarrier) Set(string, string) {} // read-only

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c.md))
	for _, e := range c.md {
		keys = append(keys, e.Key)
	}
	return keys
}

// injector collects propagation fields to append to call metadata.
type injector struct{ md core.Metadata }

func (i *injector) Get(string) string { return "" }
func (i *injector) Set(key, value string) {
	i.md = i.md.Add(key, core.StringValue(value), 0)
}
func (i *injector) Keys() []string { return nil }

func spanName(m core.Method) string {
	if m.Service == "" && m.Name == "" {
		return "rove.call"
	}
	return m.Service + "/" + m.Name
}

func spanAttrs(m core.Method) trace.SpanStartEventOption {
	return trace.WithAttributes(
		attribute.String("rpc.system", "rove"),
		attribute.String("rpc.service", m.Service),
		attribute.String("rpc.method", m.Name),
	)
}

func endSpan(span trace.Span, err error) {
	code := core.CodeOf(err)
	span.SetAttributes(attribute.String("rpc.response.status_code", code.String()))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, code.String())
	}
	span.End()
}

// ServerTracing returns a server interceptor that continues the caller's
// trace (from the request metadata, with prop; nil: the global
// propagator) in a server span around each handler. The handler's ctx
// carries the span: ctx is a *core.Request, so the span is reached with
// trace.SpanFromContext on the context the interceptor passes on.
func ServerTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) core.ServerInterceptor {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(scope)
	return func(ctx context.Context, req *core.Request, next core.HandlerFunc) error {
		p := prop
		if p == nil {
			p = otel.GetTextMapPropagator()
		}
		parent := p.Extract(ctx, metadataCarrier{req.Metadata()})
		sctx, span := tracer.Start(parent, spanName(req.Method()), trace.WithSpanKind(trace.SpanKindServer), spanAttrs(req.Method()))
		err := next(sctx, req)
		endSpan(span, err)
		return err
	}
}

// CallTracing returns a call interceptor that starts a client span for
// each call and sends its context to the peer in the call's metadata
// (with prop; nil: the global propagator).
func CallTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) core.CallInterceptor {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(scope)
	return func(ctx context.Context, m core.Method, req []byte, opts *core.CallOptions, fn func(core.Reply) error, next core.CallFunc) error {
		p := prop
		if p == nil {
			p = otel.GetTextMapPropagator()
		}
		cctx, span := tracer.Start(ctx, spanName(m), trace.WithSpanKind(trace.SpanKindClient), spanAttrs(m))
		o := core.CallOptions{}
		if opts != nil {
			o = *opts // the caller's options are not ours to change
		}
		inj := &injector{md: o.Metadata[:len(o.Metadata):len(o.Metadata)]}
		p.Inject(cctx, inj)
		o.Metadata = inj.md
		err := next(cctx, m, req, &o, fn)
		endSpan(span, err)
		return err
	}
}
