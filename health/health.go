// Package health is a health service for Rove servers, as gRPC's health
// protocol: a status per service ("" is the server as a whole), checked
// once or watched as it changes. Load balancers and orchestrators probe
// it; a server marks itself NOT_SERVING before it drains.
package health

import (
	"context"
	"sync"

	"github.com/rove-rpc/rove/core"
)

// Status is a service's health.
type Status string

// Statuses, spelled as gRPC's health protocol does.
const (
	Serving        Status = "SERVING"
	NotServing     Status = "NOT_SERVING"
	ServiceUnknown Status = "SERVICE_UNKNOWN" // no status set for the service
)

// CheckRequest names the service to check; "" is the server as a whole.
type CheckRequest struct {
	Service string `json:"service"`
}

// CheckResponse is a service's status.
type CheckResponse struct {
	Status Status `json:"status"`
}

// The health methods. Check answers the status now (NotFound for a
// service with no status). Watch streams the status now, then every
// change, until the caller stops or the session ends.
var (
	Check = core.NewTypedMethod[CheckRequest, CheckResponse]("rove.health.v1", "Check")
	Watch = core.NewServerStream[CheckRequest, CheckResponse]("rove.health.v1", "Watch")
)

// Server holds the statuses and serves them. Its methods are safe from
// any goroutine.
type Server struct {
	mu       sync.Mutex
	statuses map[string]Status
	watchers map[string]map[chan Status]struct{}
}

// NewServer returns a Server where the server as a whole ("") is SERVING.
func NewServer() *Server {
	return &Server{statuses: map[string]Status{"": Serving}, watchers: map[string]map[chan Status]struct{}{}}
}

// SetStatus sets service's status and tells its watchers.
func (s *Server) SetStatus(service string, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[service] = st
	for ch := range s.watchers[service] {
		// Each watcher keeps only the latest status: a slow one misses
		// intermediate changes, never the last.
		select {
		case <-ch:
		default:
		}
		ch <- st
	}
}

// Shutdown sets every service NOT_SERVING (before a Drain, so that
// balancers stop sending new sessions).
func (s *Server) Shutdown() {
	s.mu.Lock()
	services := make([]string, 0, len(s.statuses))
	for svc := range s.statuses {
		services = append(services, svc)
	}
	s.mu.Unlock()
	for _, svc := range services {
		s.SetStatus(svc, NotServing)
	}
}

func (s *Server) status(service string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.statuses[service]
	return st, ok
}

// Register serves Check and Watch on r.
func (s *Server) Register(r *core.Router) {
	Check.Handle(r, func(ctx context.Context, req CheckRequest) (CheckResponse, error) {
		st, ok := s.status(req.Service)
		if !ok {
			return CheckResponse{}, core.Errorf(core.NotFound, "no status for service %q", req.Service)
		}
		return CheckResponse{Status: st}, nil
	})
	Watch.Handle(r, func(ctx context.Context, req CheckRequest, out *core.Tx[CheckResponse]) error {
		ch := make(chan Status, 1)
		s.mu.Lock()
		if s.watchers[req.Service] == nil {
			s.watchers[req.Service] = map[chan Status]struct{}{}
		}
		s.watchers[req.Service][ch] = struct{}{}
		st, ok := s.statuses[req.Service]
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			// The service's set goes with its last watcher: the name is
			// the peer's choice, and a set left behind per name would let
			// a peer grow the map by watching names that do not exist.
			if w := s.watchers[req.Service]; len(w) == 1 {
				delete(s.watchers, req.Service)
			} else {
				delete(w, ch)
			}
			s.mu.Unlock()
		}()
		if !ok {
			st = ServiceUnknown
		}
		for {
			if err := out.Send(ctx, CheckResponse{Status: st}); err != nil {
				return nil // the caller stopped
			}
			select {
			case st = <-ch:
			case <-out.Done(): // the caller stopped watching
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	})
}

// CheckStatus asks the peer behind cl for service's status.
func CheckStatus(ctx context.Context, cl *core.Caller, service string) (Status, error) {
	resp, err := Check.Call(ctx, cl, CheckRequest{Service: service})
	if core.CodeOf(err) == core.NotFound {
		return ServiceUnknown, nil
	}
	return resp.Status, err
}

// WatchStatus watches service's status on the peer behind cl, calling fn
// with the status now and then with each change, until fn returns false,
// ctx ends or the session does (its error then).
func WatchStatus(ctx context.Context, cl *core.Caller, service string, fn func(Status) bool) error {
	stream, err := Watch.Call(ctx, cl, CheckRequest{Service: service}, nil)
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		resp, err := stream.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if !fn(resp.Status) {
			return nil
		}
	}
}
