// Package reflection lets a Rove server list the methods it serves, so
// that tools (cmd/rove) can find them: method ids are hashes of the names,
// which a peer cannot reverse.
package reflection

import (
	"context"

	"github.com/rove-rpc/rove/core"
)

// ListMethods is the method that lists a router's methods.
var ListMethods = core.NewTypedMethod[ListRequest, ListResponse]("rove.reflection.v1", "ListMethods")

// ListRequest asks for the methods, optionally of one service.
type ListRequest struct {
	Service string `json:"service,omitempty"`
}

// ListResponse lists the methods served.
type ListResponse struct {
	Methods []MethodInfo `json:"methods"`
}

// MethodInfo is one method: its names and its id.
type MethodInfo struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	ID      uint64 `json:"id"`
}

// Register serves ListMethods on r, listing what r serves at the time of
// each call (ListMethods included).
func Register(r *core.Router) {
	ListMethods.Handle(r, func(ctx context.Context, req ListRequest) (ListResponse, error) {
		resp := ListResponse{Methods: []MethodInfo{}}
		for _, m := range r.Methods() {
			if req.Service == "" || req.Service == m.Service {
				resp.Methods = append(resp.Methods, MethodInfo{Service: m.Service, Name: m.Name, ID: m.ID})
			}
		}
		return resp, nil
	})
}

// List asks the peer behind cl for its methods (of service, if not "").
func List(ctx context.Context, cl *core.Caller, service string) ([]MethodInfo, error) {
	resp, err := ListMethods.Call(ctx, cl, ListRequest{Service: service})
	return resp.Methods, err
}
