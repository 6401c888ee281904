package status

import (
	"strings"
	"testing"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
)

// crm_mon --output-as=xml of pacemaker 2.1.5 (Debian 12), shortened: node2
// in standby, the app failed on node1.
const CrmMonXML = `<pacemaker-result api-version="2.30" request="crm_mon --output-as=xml">
  <summary>
    <stack type="corosync"/>
    <current_dc present="true" version="2.1.5-a3f44794f94" name="node1" id="1" with_quorum="true" mixed_version="false"/>
    <nodes_configured number="2"/>
    <resources_configured number="4" disabled="0" blocked="0"/>
  </summary>
  <nodes>
    <node name="node1" id="1" online="true" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="true" is_dc="true" resources_running="3" type="member"/>
    <node name="node2" id="2" online="true" standby="true" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="true" is_dc="false" resources_running="0" type="member"/>
  </nodes>
  <resources>
    <resource id="debship-fence" resource_agent="stonith:fence_dummy" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="node1" id="1" cached="true"/>
    </resource>
    <resource id="floating-ip" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="node1" id="1" cached="true"/>
    </resource>
    <clone id="app-clone" multi_state="false" unique="false" maintenance="false" managed="true" disabled="false" failed="true" failure_ignored="false">
      <resource id="app" resource_agent="systemd:hello-web" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="true" failure_ignored="false" nodes_running_on="1">
        <node name="node1" id="1" cached="true"/>
      </resource>
      <resource id="app" resource_agent="systemd:hello-web" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>
    </clone>
  </resources>
  <failures>
    <failure op_key="app_monitor_5000" node="node1" exitstatus="not running" exitreason="inactive" exitcode="7" call="18" status="complete" last-rc-change="2026-11-26 21:19:23 +00:00" queued="0" exec="0" interval="5000" task="monitor"/>
  </failures>
  <status code="0" message="OK"/>
</pacemaker-result>`

func TestStatusFromCrmMon(t *testing.T) {
	m, err := host.ParseCrmMon([]byte(CrmMonXML))
	if err != nil {
		t.Fatal(err)
	}
	s := &Status{Nodes: []NodeStatus{{Name: "node1"}, {Name: "node2"}, {Name: "node3", Role: inventory.RoleTiebreaker, Reachable: true}}}
	s.applyCrmMon(m)
	if !s.Quorum || s.DC != "node1" || s.IPHolder != "node1" || s.Nodes[1].Pacemaker != "standby" || s.Nodes[0].Pacemaker != "online" {
		t.Fatalf("status: %+v", s)
	}
	if len(s.Resources) != 4 || !s.Resources[2].Failed || len(s.Resources[3].Nodes) != 0 {
		t.Errorf("resources: %+v", s.Resources)
	}
	if len(s.Failed) != 1 || s.Failed[0].Operation != "app_monitor_5000" || s.Failed[0].Status != "not running" {
		t.Errorf("failed actions: %+v", s.Failed)
	}
	ok, why := s.Healthy()
	if ok || !strings.Contains(strings.Join(why, "; "), "node2 is standby in pacemaker; failed action app_monitor_5000 on node1 (not running)") {
		t.Errorf("healthy %v: %v", ok, why)
	}
	var b strings.Builder
	s.Cluster, s.FloatingIP = "lab", "10.231.0.100/24"
	Write(&b, s)
	for _, want := range []string{"cluster lab: quorum, DC node1; floating IP 10.231.0.100/24 on node1", "FAILED ACTION app_monitor_5000 on node1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, b.String())
		}
	}
}
