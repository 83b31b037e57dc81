// Package cluster owns node membership (gossip with hashicorp/memberlist)
// and the placement of virtual actors on live nodes (rendezvous hashing).
// A node without seeds is a cluster of one: single-node mode is the same
// code.
package cluster
