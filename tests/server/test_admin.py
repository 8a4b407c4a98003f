"""The admin service: disruptions and leader transfer on request, refused with a reason when they cannot be."""

from __future__ import annotations

import grpc
import pytest

from tsobench.server import ChildServer, ServerConfig
from tsobench.server.admin import AdminClient

TIMEOUT_S = 10


@pytest.fixture
def server(tmp_path):
    """A server with the admin service on; the harness holds its token."""
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"), metrics_port=None, admin=True)) as child:
        yield child


def test_the_admin_service_is_off_by_default(tmp_path):
    with ChildServer(ServerConfig(data_dir=str(tmp_path / "data"), metrics_port=None)) as child:
        with pytest.raises(grpc.RpcError) as info:
            child.abort_streams()
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_client_asks_for_each_disruption_and_a_lone_server_cannot_hand_over(server):
    admin = AdminClient(server.address, server.admin_token, timeout_s=TIMEOUT_S)
    assert admin.abort_streams() == 0  # nobody had a stream open
    admin.stall(0.0)
    admin.delay(0.0, 5.0)
    with pytest.raises(grpc.RpcError) as refused:
        admin.transfer_leader()
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "lone server" in refused.value.details()


def test_a_cluster_member_refuses_an_impossible_transfer_with_its_reason(tmp_path):
    from tsobench.server import ChildCluster

    with ChildCluster(ServerConfig(data_dir=str(tmp_path), admin=True, election_timeout_s=0.5), 2) as cluster:
        leader = cluster.wait_for_leader()
        with pytest.raises(grpc.RpcError) as refused:
            AdminClient(cluster.addresses[leader], cluster.admin_token, timeout_s=TIMEOUT_S).transfer_leader(
                leader
            )  # to itself
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"cannot hand the leadership to member {leader}" in refused.value.details()
