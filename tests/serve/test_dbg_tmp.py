import tests.serve.test_guided_browser_work as t
from tests.serve.test_guided_browser_work import page, photo, server
def test_dbg(page, photo, tmp_path):
    t.open_photo(page, photo)
    page.mouse.move(*t.screen_point(page, 4, 10)); page.mouse.down()
    page.mouse.move(*t.screen_point(page, 28, 50), steps=8); page.mouse.up()
    page.fill("#picker", t.hex_of(t.RED))
    page.wait_for_function(t.RENDERED, arg=[t.RED])
    t.click_pixel(page, 80, 40)
    page.wait_for_timeout(2000)
    print(page.evaluate(t.HINTS_ON_SHOW), page.inner_text("#status"), page.inner_text("#count"))
    print(page.evaluate("document.elementFromPoint(...arguments[0])", list(t.screen_point(page, 80, 40))) )
