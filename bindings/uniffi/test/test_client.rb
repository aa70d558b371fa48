# frozen_string_literal: true

# Client mode against a real `mod --demo` (HTTP and WebSocket API on loopback).

require_relative 'helper'

class TestClient < Minitest::Test
  def setup
    Daemon.start
    @client = Mo::Client.new(Daemon.url, Daemon.token)
  end

  def test_devices_attach_who_log
    names = @client.devices.map(&:name).sort
    assert_equal((1..5).map { |i| "sim-0#{i}" }, names)
    device = @client.device('sim-03')
    assert_match(%r{\Asim://}, device.url)
    con = @client.attach('sim-03')
    assert_equal 'sim-03', con.device
    login(con, user: 'demo', prompt: PROMPT)
    con.send_line('echo via-ruby')
    con.expect(['\nvia-ruby\n'])
    assert_equal ['demo'], @client.who('sim-03').map(&:user)
    assert_equal ['demo'], con.who.map(&:user)
    session = @client.sessions.find { |s| s.device == 'sim-03' }
    refute_nil session
    con.close
    assert_includes @client.log('sim-03', 50), 'via-ruby'
  end

  def test_power_and_events
    # The demo devices have no power controller: the API says so.
    error = assert_raises(Mo::MoError::Unsupported) { @client.power('sim-01', 'status') }
    assert_includes error.message, 'no power controller'
    assert_raises(Mo::MoError::InvalidArgument) { @client.power('sim-01', 'explode') }
    events = @client.list_events(nil, 5)
    assert_operator events.length, :<=, 5
    events.each { |e| refute_empty e.device }
  end

  def test_client_errors
    error = assert_raises(Mo::MoError::NotFound) { @client.device('no-such-device') }
    assert_includes error.message, 'no-such-device'
    assert_raises(Mo::MoError::NotFound) { @client.attach('no-such-device') }
    assert_raises(Mo::MoError::Auth) { Mo::Client.new(Daemon.url, 'not-a-token').devices }
    error = assert_raises(Mo::MoError::InvalidArgument) { Mo::Client.new('not a url') }
    assert_includes error.message, 'not a url'
  end
end
