/* mqtt.so: libmosquitto errors and MQTT 5 reason codes -> ferry_status.
 * Unit-tested in tests/unit/check_mqtt.c. */
#include "config.h"

#include <ferry/transport.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "mqtt-status.h"

int fmqtt_status(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        return FERRY_OK;
    case MOSQ_ERR_NOMEM:
    case MOSQ_ERR_CONN_PENDING:
        return FERRY_E_AGAIN;
    case MOSQ_ERR_TIMEOUT:
    case MOSQ_ERR_KEEPALIVE:
        return FERRY_E_TIMEOUT;
    case MOSQ_ERR_NO_CONN:
    case MOSQ_ERR_CONN_LOST:
    case MOSQ_ERR_CONN_REFUSED:
    case MOSQ_ERR_ERRNO:          /* a failed system call: connect refused, reset */
    case MOSQ_ERR_EAI:            /* name lookup: a resolver may answer later */
    case MOSQ_ERR_PROXY:
        return FERRY_E_NOCONN;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_AUTH:
    case MOSQ_ERR_ACL_DENIED:
    case MOSQ_ERR_TLS:
    case MOSQ_ERR_TLS_HANDSHAKE:
    case MOSQ_ERR_OCSP:
    case MOSQ_ERR_NOT_FOUND:
        return FERRY_E_CONFIG;
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_OVERSIZE_PACKET:
        return FERRY_E_TOOBIG;
    case MOSQ_ERR_NOT_SUPPORTED:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
    case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
        return FERRY_E_NOTSUP;
    case MOSQ_ERR_PROTOCOL:
    case MOSQ_ERR_MALFORMED_PACKET:
    case MOSQ_ERR_DUPLICATE_PROPERTY:
    case MOSQ_ERR_TOPIC_ALIAS_INVALID:
    case MOSQ_ERR_ADMINISTRATIVE_ACTION:
    default:                      /* and codes newer than this table */
        return FERRY_E_FATAL;
    }
}

int fmqtt_connack_status(int reason)
{
    switch (reason) {
    case 0:
        return FERRY_OK;
    /* MQTT 3.1.1 CONNACK return codes */
    case 1:                                   /* unacceptable protocol version */
    case 2:                                   /* identifier rejected */
    case 4:                                   /* bad user name or password */
    case 5:                                   /* not authorized */
        return FERRY_E_CONFIG;
    case 3:                                   /* server unavailable */
        return FERRY_E_NOCONN;
    /* MQTT 5 */
    case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
    case MQTT_RC_CLIENTID_NOT_VALID:
    case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_BANNED:
    case MQTT_RC_BAD_AUTHENTICATION_METHOD:
    case MQTT_RC_MALFORMED_PACKET:
    case MQTT_RC_PROTOCOL_ERROR:
    case MQTT_RC_PACKET_TOO_LARGE:
    case MQTT_RC_QOS_NOT_SUPPORTED:
    case MQTT_RC_RETAIN_NOT_SUPPORTED:
        return FERRY_E_CONFIG;
    case MQTT_RC_SERVER_UNAVAILABLE:
    case MQTT_RC_SERVER_BUSY:
    case MQTT_RC_QUOTA_EXCEEDED:
    case MQTT_RC_CONNECTION_RATE_EXCEEDED:
    case MQTT_RC_USE_ANOTHER_SERVER:
    case MQTT_RC_SERVER_MOVED:
    case MQTT_RC_UNSPECIFIED:
    case MQTT_RC_IMPLEMENTATION_SPECIFIC:
    default:
        return FERRY_E_NOCONN;
    }
}

int fmqtt_puback_status(int reason)
{
    switch (reason) {
    case MQTT_RC_QUOTA_EXCEEDED:              /* the broker may take it later */
    case MQTT_RC_PACKET_ID_IN_USE:
        return FERRY_E_AGAIN;
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_TOPIC_NAME_INVALID:
        return FERRY_E_CONFIG;
    case MQTT_RC_PACKET_TOO_LARGE:
        return FERRY_E_TOOBIG;
    case MQTT_RC_PAYLOAD_FORMAT_INVALID:
    case MQTT_RC_IMPLEMENTATION_SPECIFIC:
    case MQTT_RC_UNSPECIFIED:
    default:
        return FERRY_E_REJECTED;
    }
}
