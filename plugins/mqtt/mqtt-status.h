/* mqtt.so's mapping of libmosquitto errors and MQTT 5 reason codes to
 * ferry statuses: the one place that decides what is retried. */
#ifndef FERRY_MQTT_STATUS_H
#define FERRY_MQTT_STATUS_H

/** A libmosquitto return code (MOSQ_ERR_*) as a ferry_status. */
int fmqtt_status(int mosq_err);
/** A refusing CONNACK reason code (MQTT 5, or 3.1.1 codes 1..5) as a ferry_status:
 *  FERRY_E_CONFIG for what retrying cannot fix (credentials, client id,
 *  protocol), FERRY_E_NOCONN for a broker that may accept later. */
int fmqtt_connack_status(int reason);
/** A PUBACK reason code of 0x80 or more (the broker refused the message). */
int fmqtt_puback_status(int reason);

#endif
