"""The silent node's answers (testbed/silent_node.py): what Kamailio must take as a node's."""

from __future__ import annotations

from testbed.silent_node import TO_TAG, response, transaction

INVITE = (
    "INVITE sip:112@10.9.0.12:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.9.0.10:5060;branch=z9hG4bKedge\r\n"
    "Via: SIP/2.0/UDP 10.9.0.20:5060;branch=z9hG4bKcaller\r\n"
    "From: <sip:0812@10.9.0.20>;tag=abc\r\n"
    "To: <sip:112@10.9.0.10>\r\n"
    "Call-ID: call-1@10.9.0.20\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:0812@10.9.0.20:5060>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def lines(data: bytes) -> list[str]:
    return data.decode().split("\r\n")


def test_trying_echoes_every_via_and_the_dialog_headers_without_a_tag():
    assert lines(response(INVITE, "100 Trying")) == [
        "SIP/2.0 100 Trying",
        "Via: SIP/2.0/UDP 10.9.0.10:5060;branch=z9hG4bKedge",
        "Via: SIP/2.0/UDP 10.9.0.20:5060;branch=z9hG4bKcaller",
        "From: <sip:0812@10.9.0.20>;tag=abc",
        "To: <sip:112@10.9.0.10>",
        "Call-ID: call-1@10.9.0.20",
        "CSeq: 1 INVITE",
        "Content-Length: 0",
        "",
        "",
    ]


def test_a_final_answer_tags_the_to_header_once():
    final = lines(response(INVITE, "487 Request Terminated"))
    assert final[0] == "SIP/2.0 487 Request Terminated"
    assert f"To: <sip:112@10.9.0.10>;tag={TO_TAG}" in final
    tagged = INVITE.replace("To: <sip:112@10.9.0.10>", "To: <sip:112@10.9.0.10>;tag=x")
    assert "To: <sip:112@10.9.0.10>;tag=x" in lines(response(tagged, "200 OK"))


def test_a_cancel_is_matched_to_its_invite():
    cancel = INVITE.replace("INVITE sip", "CANCEL sip").replace("1 INVITE", "1 CANCEL")
    assert transaction(cancel) == transaction(INVITE) == ("call-1@10.9.0.20", "1")
    compact = INVITE.replace("Call-ID:", "i:")
    assert transaction(compact) == transaction(INVITE)
