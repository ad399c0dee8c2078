"""A local Google Cloud Storage server for tests: ``python tests/gcs_emulator.py PORT BUCKET``.

The ``gcp-storage-emulator`` package serves the GCS JSON API on localhost, and
gcsfs (``STORAGE_EMULATOR_HOST``) and tensorstore (``TENSORSTORE_GCS_HTTP_URL``)
accept it as their endpoint. It lacks three things real GCS has: the
``x-goog-generation`` header on downloads and generation preconditions
(``ifGenerationMatch`` / ``ifGenerationNotMatch``), which tensorstore's OCDBT
checkpoints (orbax's default) rely on, and the ``moveTo`` call that gcsfs
tries first when renaming (a 501 there costs 30 s of retries). This launcher
adds them around the emulator's own handlers, with GCS's status codes (412,
304), and serialises the handlers so that a precondition and its write are
one step.
"""

import http
import sys
import threading

from gcp_storage_emulator import server
from gcp_storage_emulator.exceptions import NotFound

_LOCK = threading.Lock()


def _generation(request, storage) -> str:
  """The object's current generation, '0' if it does not exist."""
  try:
    return str(storage.get_file_obj(request.params['bucket_name'],
                                    request.params['object_id'])['generation'])
  except (NotFound, KeyError):
    return '0'


def _object_name(request) -> dict:
  """Uploads name the object in the query (?name=) or a multipart body."""
  if 'object_id' not in request.params and request.query.get('name'):
    request.params['object_id'] = request.query['name'][0]
  return request.params


def _with_generations(handler):
  def wrapped(request, response, storage, *args, **kwargs):
    with _LOCK:
      _object_name(request)
      query = request.query
      if 'object_id' in request.params:
        current = _generation(request, storage)
        match = query.get('ifGenerationMatch')
        if match and match[0] != current:
          response.status = http.HTTPStatus.PRECONDITION_FAILED
          response.json({'error': {'code': 412,
                                   'message': 'conditionNotMet'}})
          return None
        not_match = query.get('ifGenerationNotMatch')
        if not_match and not_match[0] == current:
          response.status = http.HTTPStatus.NOT_MODIFIED
          return None
        if current != '0':
          response['x-goog-generation'] = current
      out = handler(request, response, storage, *args, **kwargs)
      if 'object_id' in request.params and response.status.value < 300:
        current = _generation(request, storage)
        if current != '0':
          response['x-goog-generation'] = current
      return out
  return wrapped


def _move(request, response, storage, *args, **kwargs):
  """POST b/BUCKET/o/SOURCE/moveTo/o/TARGET: a copy, then a delete."""
  del args, kwargs
  bucket = request.params['bucket_name']
  try:
    moved = server.objects._copy(  # pylint: disable=protected-access
        request.base_url, storage, bucket, request.params['object_id'],
        bucket, request.params['dest_object_id'])
    storage.delete_file(bucket, request.params['object_id'])
    response.json(moved)
  except NotFound:
    response.status = http.HTTPStatus.NOT_FOUND


def main(port: int, bucket: str) -> None:
  move = (r'^(?:/storage/v1)?/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)'
          r'/moveTo/o/(?P<dest_object_id>.*[^/]+)$', {server.POST: _move})
  server.HANDLERS = (move,) + tuple(
      (regex, {method: _with_generations(h) for method, h in handlers.items()})
      for regex, handlers in server.HANDLERS)
  server.objects.insert = _with_generations(server.objects.insert)
  server.create_server('127.0.0.1', port, in_memory=True,
                       default_bucket=bucket).run()


if __name__ == '__main__':
  main(int(sys.argv[1]), sys.argv[2])
