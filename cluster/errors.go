// Package cluster owns node membership (gossip with hashicorp/memberlist)
// and the placement of virtual actors on live nodes (rendezvous hashing).
// A node without seeds is a cluster of one: single-node mode is the same
// code.
package cluster

import "errors"

// ErrNoMembers means the view has no live member (the node is stopping).
var ErrNoMembers = errors.New("cluster: no live member")

// ErrSecret means CLUSTER_SECRET cannot be used as a gossip key.
var ErrSecret = errors.New("cluster: bad secret")
