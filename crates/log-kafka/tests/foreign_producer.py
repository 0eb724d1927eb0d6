"""Writes one record with confluent-kafka: a Kafka client that is not UltraCore's.

usage: foreign_producer.py BOOTSTRAP TOPIC KEY_HEX VALUE_HEX
"""
import sys

from confluent_kafka import Producer

bootstrap, topic, key_hex, value_hex = sys.argv[1:5]
producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
errors = []
producer.produce(topic, key=bytes.fromhex(key_hex), value=bytes.fromhex(value_hex),
                 on_delivery=lambda err, msg: errors.append(err) if err else None)
remaining = producer.flush(30)
if remaining or errors:
    sys.exit(f"delivery failed: {errors or f'{remaining} records not delivered'}")
