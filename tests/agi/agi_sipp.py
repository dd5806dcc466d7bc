"""A SIPp scenario for an operator's softphone dialling out: INVITE, digest auth on the 401, the
call answered, then Asterisk hangs up (a feature code ends by itself)."""

from __future__ import annotations

from testbed.sipp import _SDP, _header


def operator_dial_scenario(*, user: str, password: str, number: str, wait_ms: int = 15000) -> str:
    invite = """  <send retrans="500"><![CDATA[
      INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      {auth}Content-Type: application/sdp
      Content-Length: [len]

      {sdp}
    ]]></send>
"""
    ack = """  <send><![CDATA[
      ACK sip:{number}@[remote_ip]:[remote_port] SIP/2.0
      {via}
      From: <sip:{user}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
"""
    auth = f"[authentication username={user} password={password}]\n      "
    fields = {"number": number, "user": user, "sdp": _SDP}
    return (
        _header("siaga operator dials")
        + invite.format(cseq=1, auth="", **fields)
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="401" auth="true"/>\n'
        # The ACK of a refused INVITE belongs to that INVITE's transaction: same Via branch.
        + ack.format(cseq=1, via="[last_Via:]", **fields)
        + invite.format(cseq=2, auth=auth, **fields)
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="180" optional="true"/>\n'
        + '  <recv response="183" optional="true"/>\n'
        + '  <recv response="200" rtd="true"/>\n'
        + ack.format(
            cseq=2,
            via="Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
            **fields,
        )
        + f"""  <recv request="BYE" timeout="{wait_ms}"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
</scenario>
"""
    )
